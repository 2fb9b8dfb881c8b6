import Foundation
import QSEngine
import QSLanguage

extension Session {
    /// `help` and `set`, and the settings every session has.
    func registerGenericCommands() {
        register(
            CommandSpec(
                "help", summary: "List the commands, or explain one.",
                discussion: "Without an argument, lists every command and recipe with one line each. With a command name, shows its usage, arguments, options, flags and what it returns.",
                positionals: [ArgumentSpec("command", .word, help: "the command to explain")],
                examples: ["help", "help quantize"]),
            handler: Session.runHelp)
        registerSetting(ArgumentSpec("threads", .integer, help: "worker threads for kernels (0: QS_THREADS, else all cores)", default: .number(0), range: 0...1024))
        registerSetting(ArgumentSpec("seed", .integer, help: "seed for sampling calibration and evaluation text", default: .number(0), range: 0...4_294_967_295))
        registerSetting(ArgumentSpec("eval_text", .string, help: "the text 'eval' uses when none is named", default: .word("shakespeare")))
    }

    var setCommandSpec: CommandSpec {
        CommandSpec(
            "set", summary: "Change settings, or show them.",
            discussion: "With name=value options, changes those settings for the rest of the session. Without, prints every setting and its value.",
            options: settings.specs,
            examples: ["set threads=2 seed=7", "set"])
    }

    static func runHelp(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let table = session.table
        guard let name = invocation["command"]?.text else {
            session.output(table.summaryText)
            return .none
        }
        guard let spec = table[name] else {
            var reason = "no such command"
            if let suggestion = closeMatches(to: name, among: table.names).first { reason += "; did you mean '\(suggestion)'?" }
            throw CommandError.invalidArgument("command", reason)
        }
        session.output(spec.helpText)
        return .none
    }

    static func runSet(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let given = invocation.spec.options.filter { invocation.isGiven($0.name) }
        if given.isEmpty {
            var record = Record()
            for spec in session.settings.specs {
                let value = session.settings[spec.name] ?? .none
                record[spec.name] = value
                session.output("\(spec.name) = \(value)\n")
            }
            return .record(record)
        }
        for spec in given {
            try session.setSetting(spec.name, invocation.arguments[spec.name] ?? .none)
            if spec.name == "threads", let count = session.setting("threads")?.number {
                ThreadCount.set(Int(count))
            }
        }
        return .none
    }
}
