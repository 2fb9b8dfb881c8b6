@testable import QSInterpreter
@testable import QSLanguage

/// A session with stub engine commands, in-memory files and captured output.
final class TestSession {
    let session: Session
    private(set) var output = ""
    /// The invocations the stub `quantize` received.
    private(set) var quantized: [CommandInvocation] = []
    var files: [String: String]

    init(files: [String: String] = [:], libraryDirectory: String? = "/lib") {
        self.files = files
        session = Session(output: { _ in }, libraryDirectory: libraryDirectory)
        session.output = { [unowned self] text in output += text }
        session.readFile = { [unowned self] path in
            guard let text = self.files[path] else { throw CommandError.failed("no such file") }
            return Array(text.utf8)
        }
        session.register(
            CommandSpec(
                "eval", summary: "Measure.",
                positionals: [
                    ArgumentSpec("metric", .word, help: "", default: .word("ppl"), allowed: ["ppl", "kl"]),
                    ArgumentSpec("text", .string, help: "", default: .word("shakespeare")),
                ],
                options: [ArgumentSpec("ctx", .integer, help: "", default: .number(512), range: 8...8192)],
                resultFields: [("ppl", "perplexity"), ("ctx", "context")])
        ) { invocation, _ in
            .record(Record([("ppl", .number(12.5)), ("ctx", invocation["ctx"]!), ("text", invocation["text"]!)]))
        }
        session.register(
            CommandSpec(
                "quantize", summary: "Quantize.",
                positionals: [ArgumentSpec("pattern", .pattern, help: "", default: .word("*"))],
                options: [ArgumentSpec("bits", .integer, help: "", default: .number(4), range: 2...8)],
                flags: [FlagSpec("sym", help: "", group: "zero"), FlagSpec("asym", help: "", group: "zero")])
        ) { [unowned self] invocation, _ in
            quantized.append(invocation)
            return .record(Record([("bits", invocation["bits"]!)]))
        }
        session.register(
            CommandSpec("load", summary: "Load.", positionals: [ArgumentSpec("model", .path, help: "", required: true)])
        ) { invocation, _ in
            let name = try invocation.text("model")
            if name == "missing" { throw CommandError.invalidArgument("model", "no model called 'missing'") }
            if name == "broken" { throw StubEngineError(message: "out/broken.gguf: tensor 'embed' is truncated") }
            return .record(Record([("name", .string(name))]))
        }
    }

    /// Runs a script; the rendered diagnostics on failure, nil on success.
    @discardableResult
    func run(_ source: String, name: String = "main.qs") -> String? {
        do {
            _ = try session.run(SourceFile(name: name, text: source))
            return nil
        } catch {
            return DiagnosticRenderer().render(error.diagnostics)
        }
    }

    func value(_ source: String) throws -> Value {
        try session.run(SourceFile(name: "main.qs", text: source))
    }
}

struct StubEngineError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
