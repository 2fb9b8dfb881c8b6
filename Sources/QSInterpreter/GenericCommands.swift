import Foundation
import QSEngine
import QSLanguage

/// `help`: the command list, or one command explained.
enum HelpCommand: Command {
    static let spec = CommandSpec(
        "help", summary: "List the commands, or explain one.",
        discussion: "Without an argument, lists every command and recipe with one line each. With a command name, shows its usage, arguments, options, flags and what it returns.",
        positionals: [ArgumentSpec("command", .word, help: "the command to explain")],
        examples: ["help", "help quantize"])

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        session.output(try session.helpText(invocation["command"]?.text))
        return .none
    }
}

extension Session {
    /// What `help` prints: the list of commands and recipes, or the help of the one named.
    /// The name is looked up, never read as source (`qs help X` passes it straight here).
    package func helpText(_ name: String?) throws(CommandError) -> String {
        guard let name else { return table.summaryText }
        guard let spec = table[name] else {
            var reason = "no such command"
            if let suggestion = closeMatches(to: name, among: table.names).first { reason += "; did you mean '\(suggestion)'?" }
            throw CommandError.invalidArgument("command", reason)
        }
        return spec.helpText
    }
}

/// `set`: change settings, or show them. Its options are the session's settings.
enum SetCommand: Command {
    static var spec: CommandSpec { spec(settings: Session.standardSettings) }

    /// The spec with one option per setting.
    static func spec(settings: [ArgumentSpec]) -> CommandSpec {
        CommandSpec(
            "set", summary: "Change settings, or show them.",
            discussion: "With name=value options, changes those settings for the rest of the session. Without, prints every setting and its value.",
            options: settings,
            resultFields: settings.map { ($0.name, $0.help) },
            examples: ["set threads=2 seed=7", "set"])
    }

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
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
