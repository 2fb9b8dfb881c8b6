import Foundation
import QSInterpreter
import QSLanguage

/// Lets the REPL drive a session: runs each complete input, and answers completion from the
/// session's one command table, its variables and the loaded model's layer names.
package final class SessionBridge: LineEvaluator, CompletionSource {
    let runner: ScriptRunner
    var session: Session { runner.session }
    /// Numbers REPL inputs so that diagnostics name which one (`<repl:3>`).
    private var inputCount = 0

    package init(runner: ScriptRunner) {
        self.runner = runner
        runner.session.isCancelled = { Cancellation.isRequested }
    }

    package func evaluate(_ source: String) {
        inputCount += 1
        do {
            let value = try session.run(SourceFile(name: "<repl:\(inputCount)>", text: source))
            // Commands print their own results; show the value of a bare expression.
            switch value {
            case .none, .record: break
            default: session.output("\(value)\n")
            }
        } catch {
            FileHandle.standardError.write(Data(DiagnosticRenderer(color: runner.color).render(error.diagnostics).utf8))
        }
    }

    /// Complete unless a brace, bracket or parenthesis is still open or a string is unclosed.
    package func isComplete(_ source: String) -> Bool {
        let (tokens, diagnostics) = Lexer.tokenize(SourceFile(name: "<repl>", text: source))
        if diagnostics.contains(where: { $0.id == .unterminatedString }) { return false }
        var depth = 0
        for token in tokens {
            if case .symbol(let symbol) = token.kind {
                switch symbol {
                case .leftBrace, .leftBracket, .leftParen: depth += 1
                case .rightBrace, .rightBracket, .rightParen: depth -= 1
                default: break
                }
            }
        }
        return depth <= 0
    }

    package var commandNames: [String] {
        session.table.names + ["let", "if", "for", "recipe", "use", "print", "assert"]
    }

    package func optionNames(command: String) -> [String] {
        session.table[command]?.options.map(\.name) ?? []
    }

    package func flagNames(command: String) -> [String] {
        session.table[command]?.flags.map(\.name) ?? []
    }

    package func optionValues(command: String, option: String) -> [String] {
        session.table[command]?.argument(named: option)?.allowed ?? []
    }

    package func optionKinds(command: String, option: String) -> ArgumentKinds {
        kinds(of: session.table[command]?.argument(named: option))
    }

    package func argumentKinds(command: String, argumentIndex: Int) -> ArgumentKinds {
        guard let spec = session.table[command], argumentIndex < spec.positionals.count else { return [] }
        return kinds(of: spec.positionals[argumentIndex])
    }

    package func argumentWords(command: String, argumentIndex: Int) -> [String] {
        if command == "help" { return session.table.names }
        guard let spec = session.table[command], argumentIndex < spec.positionals.count else { return [] }
        return spec.positionals[argumentIndex].allowed
    }

    func kinds(of argument: ArgumentSpec?) -> ArgumentKinds {
        guard let argument else { return [] }
        switch argument.type {
        case .path: return [.path, .registryName, .variable]
        case .pattern: return [.layerPattern, .variable]
        default: return [.variable]
        }
    }

    package var layerNames: [String] { session.layerNames }

    package var registryNames: [String] { session.registryNames }

    package var variableNames: [String] { session.globals.visibleNames.sorted() }
}

/// Starts the interactive REPL over a script runner's session; returns the exit status.
package enum REPLDriver {
    package static func run(runner: ScriptRunner) -> Int32 {
        let bridge = SessionBridge(runner: runner)
        FileHandle.standardOutput.write(Data("qs 0.1.0 — type 'help' for commands, ':help' for keys, ':quit' to leave\n".utf8))
        REPL(evaluator: bridge, completion: bridge, historyPath: REPL.defaultHistoryPath()).run()
        return 0
    }
}
