import Foundation
import Testing

@testable import QSREPL

/// Drives the real line editor in a pseudo-terminal: `qs-repl-demo` runs the REPL with an
/// evaluator that echoes "ran: <input>". Set QS_REPL_EXECUTABLE to drive another program that
/// behaves the same way.
@Suite(.serialized)
struct REPLTerminalTests {
    /// The demo built next to this test binary (.build/<config>/qs-repl-demo).
    static func executable() -> String? {
        if let path = ProcessInfo.processInfo.environment["QS_REPL_EXECUTABLE"] { return path }
        let me =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var folder = URL(fileURLWithPath: me).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = folder.appendingPathComponent("qs-repl-demo").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
        return nil
    }

    /// Decodes the octal escapes (`\\040` for a space) libedit writes in its history file.
    static func unvis(_ text: String) -> String {
        var bytes: [UInt8] = []
        var input = Array(text.utf8)[...]
        while let byte = input.popFirst() {
            let digits = input.prefix(3)
            if byte == UInt8(ascii: "\\"), digits.count == 3,
                let value = UInt8(String(decoding: digits, as: UTF8.self), radix: 8)
            {
                bytes.append(value)
                input = input.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Starts the demo with QS_HOME in a fresh temporary folder.
    private func start() throws -> (PseudoTerminal, home: String) {
        let executable = try #require(
            Self.executable(), "qs-repl-demo is not built next to the tests; run `swift build` first")
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("qs-repl-\(UUID().uuidString)").path
        let environment = [
            "QS_HOME": home + "/qs", "HOME": home, "TERM": "vt100", "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin",
        ]
        let terminal = try PseudoTerminal(executable: executable, environment: environment)
        return (terminal, home)
    }

    private func expect(_ terminal: PseudoTerminal, _ what: String, until condition: (TerminalScreen) -> Bool) -> Bool {
        let held = terminal.wait(until: condition)
        if !held { Issue.record("expected \(what)\n\(terminal.screen)") }
        return held
    }

    /// The real `qs` (QS_BIN, set by scripts/test): completion from the command table, a run,
    /// an error that leaves the session up with its variables, and history saved on quit.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["QS_BIN"] != nil))
    func realQSCompletesRunsReportsAndRemembers() throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("qs-repl-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: home) }
        let environment = [
            "QS_HOME": home + "/qs", "HOME": home, "TERM": "vt100", "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin",
            "NO_COLOR": "1",
        ]
        let terminal = try PseudoTerminal(executable: ProcessInfo.processInfo.environment["QS_BIN"]!, environment: environment)
        guard expect(terminal, "the prompt", until: { $0.currentLine == "qs> " }) else { return }
        terminal.type("hel")
        guard expect(terminal, "hel typed", until: { $0.beforeCursor == "qs> hel" }) else { return }
        terminal.type("\t")
        guard expect(terminal, "help completed", until: { $0.beforeCursor == "qs> help " }) else { return }
        terminal.type("ev\t")
        guard expect(terminal, "a command name completed as argument", until: { $0.beforeCursor == "qs> help eval " }) else { return }
        terminal.type("\r")
        guard expect(terminal, "help for eval", until: { $0.text.contains("eval [ppl|kld|embed|classify]") }) else { return }
        guard expect(terminal, "a new prompt", until: { $0.currentLine == "qs> " }) else { return }
        terminal.type("let r = 21\r")
        guard expect(terminal, "a new prompt", until: { $0.currentLine == "qs> " }) else { return }
        terminal.type("prnt r\r")
        guard expect(terminal, "an error with its caret", until: { $0.text.contains("error:") && $0.text.contains("^") }) else { return }
        guard expect(terminal, "the session still up", until: { $0.currentLine == "qs> " }) else { return }
        terminal.type("print \"twice {r * 2}\"\r")
        guard expect(terminal, "the variable kept", until: { $0.text.contains("twice 42") }) else { return }
        guard expect(terminal, "a new prompt", until: { $0.currentLine == "qs> " }) else { return }
        terminal.type(":quit\r")
        #expect(terminal.waitForExit() == 0, "\(terminal.screen)")
        let history = try String(contentsOfFile: home + "/qs/history", encoding: .utf8)
        #expect(Self.unvis(history).contains("\nprint \"twice {r * 2}\"\n"), "history file: \(history)")
    }

    @Test func tabCompletesRunsAndRemembers() throws {
        let (terminal, home) = try start()
        defer { try? FileManager.default.removeItem(atPath: home) }
        guard expect(terminal, "the prompt", until: { $0.currentLine == "qs> " }) else { return }

        terminal.type("qua")
        guard expect(terminal, "qua typed", until: { $0.beforeCursor == "qs> qua" }) else { return }
        terminal.type("\t")
        guard expect(terminal, "quantize completed", until: { $0.beforeCursor == "qs> quantize " }) else { return }
        terminal.type("layer.1.a\t")
        guard expect(terminal, "a layer segment completed", until: { $0.beforeCursor == "qs> quantize layer.1.attn." })
        else { return }
        terminal.type("q method=g\t")
        guard expect(terminal, "an option value completed", until: { $0.beforeCursor.hasSuffix("method=gptq ") }) else {
            return
        }
        terminal.type("bits=4\r")
        guard
            expect(
                terminal, "the command run",
                until: { $0.text.contains("ran: quantize layer.1.attn.q method=gptq bits=4") })
        else { return }
        guard expect(terminal, "a new prompt", until: { $0.currentLine == "qs> " }) else { return }

        terminal.type(":quit\r")
        let status = terminal.waitForExit()
        #expect(status == 0, "\(terminal.screen)")
        let history = try String(contentsOfFile: home + "/qs/history", encoding: .utf8)
        #expect(
            Self.unvis(history).contains("\nquantize layer.1.attn.q method=gptq bits=4\n"), "history file: \(history)")
    }

    @Test func secondTabListsContinuationAndControlKeys() throws {
        let (terminal, home) = try start()
        defer { try? FileManager.default.removeItem(atPath: home) }
        guard expect(terminal, "the prompt", until: { $0.currentLine == "qs> " }) else { return }

        terminal.type("quantize layer.1.\t\t")
        guard expect(terminal, "the segments listed", until: { $0.text.contains("attn.") && $0.text.contains("mlp.") })
        else { return }
        guard expect(terminal, "the line redrawn", until: { $0.beforeCursor == "qs> quantize layer.1." }) else {
            return
        }

        // Ctrl-C at the prompt drops the line and prompts again.
        terminal.type("\u{3}")
        guard expect(terminal, "a fresh prompt after Ctrl-C", until: { $0.currentLine == "qs> " && $0.row > 0 }) else {
            return
        }
        terminal.type("print 1\r")
        guard expect(terminal, "the next command run alone", until: { $0.text.contains("ran: print 1") }) else {
            return
        }
        #expect(!terminal.screen.text.contains("ran: quantize"))
        // Typing ahead of the prompt is not what is tested here: wait for it each time.
        guard expect(terminal, "a prompt", until: { $0.currentLine == "qs> " }) else { return }

        // An open brace asks for more lines.
        terminal.type("for x in [1] {\r")
        guard expect(terminal, "the continuation prompt", until: { $0.currentLine == "...> " }) else { return }
        terminal.type("}\r")
        guard expect(terminal, "the block run", until: { $0.text.contains("ran: for x in [1] {\n}") }) else { return }
        guard expect(terminal, "a prompt", until: { $0.currentLine == "qs> " }) else { return }

        // Ctrl-C while a command runs asks it to stop.
        terminal.type("wait\r")
        guard expect(terminal, "wait running", until: { $0.text.contains("wait\n") }) else { return }
        terminal.type("\u{3}")
        guard expect(terminal, "the command cancelled", until: { $0.text.contains("cancelled") }) else { return }
        guard expect(terminal, "a prompt after cancelling", until: { $0.currentLine == "qs> " }) else { return }

        // Up recalls the last line, Ctrl-A Ctrl-K clears it; :history lists the lines; Ctrl-D quits.
        terminal.type("\u{1B}[A")
        guard expect(terminal, "the last line recalled", until: { $0.beforeCursor == "qs> wait" }) else { return }
        terminal.type("\u{1}\u{B}")
        guard expect(terminal, "the line cleared", until: { $0.currentLine == "qs> " }) else { return }
        terminal.type(":history\r")
        guard
            expect(
                terminal, "the history listed",
                until: { $0.text.contains("1  print 1\n2  for x in [1] {\n3  }\n4  wait\n5  :history") })
        else { return }
        guard expect(terminal, "a prompt", until: { $0.currentLine == "qs> " }) else { return }

        // Ctrl-R finds an earlier line as it is typed; Enter runs it.
        terminal.type("\u{12}")
        guard expect(terminal, "the search prompt", until: { $0.text.contains("bck:") }) else { return }
        terminal.type("prin")
        guard expect(terminal, "the search typed", until: { $0.text.contains("bck:prin") }) else { return }
        terminal.type("\r")
        guard
            expect(
                terminal, "the found line run", until: { $0.text.components(separatedBy: "ran: print 1").count == 3 })
        else { return }
        guard expect(terminal, "a prompt", until: { $0.currentLine == "qs> " }) else { return }
        terminal.type("\u{4}")
        #expect(terminal.waitForExit() == 0, "\(terminal.screen)")
    }
}
