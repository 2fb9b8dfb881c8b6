import QSLanguage

/// What a command handler is given: the spec, the argument values (checked against the spec,
/// defaults filled in), the flags, and where the call was written.
package struct CommandInvocation {
    package var spec: CommandSpec
    /// Every positional and option that was given or has a default, by name.
    package var arguments: [String: Value]
    /// The flags given.
    package var flags: Set<String>
    package var file: SourceFile
    /// The whole call.
    package var range: SourceRange
    /// Where each given argument was written (for errors about one argument).
    package var argumentRanges: [String: SourceRange]

    package subscript(name: String) -> Value? { arguments[name] }

    package func has(_ flag: String) -> Bool { flags.contains(flag) }

    /// Whether the argument was written (rather than defaulted or absent).
    package func isGiven(_ name: String) -> Bool { argumentRanges[name] != nil }

    /// The number given for `name`; throws a `CommandError` naming the argument otherwise.
    package func number(_ name: String) throws(CommandError) -> Double {
        guard let value = arguments[name]?.number else { throw .invalidArgument(name, "expected a number") }
        return value
    }

    /// The integer given for `name`.
    package func integer(_ name: String) throws(CommandError) -> Int {
        let value = try number(name)
        guard value == value.rounded(), abs(value) < 1e15 else { throw .invalidArgument(name, "expected an integer") }
        return Int(value)
    }

    /// The layer pattern given for `name`, compiled.
    package func glob(_ name: String) throws(CommandError) -> Glob {
        let text = try text(name)
        do {
            return try Glob(text)
        } catch {
            throw .invalidArgument(name, error.reason)
        }
    }

    /// The string or word given for `name`.
    package func text(_ name: String) throws(CommandError) -> String {
        guard let value = arguments[name]?.text else { throw .invalidArgument(name, "expected a word or string") }
        return value
    }
}

/// An error a command handler throws. The interpreter adds where: an `invalidArgument` points at
/// that argument, a `failed` at the whole command. Any other error is shown by its description,
/// pointing at the command.
package enum CommandError: Error, Sendable, Equatable {
    /// The named argument is unusable; the reason says why and what was expected.
    case invalidArgument(String, String)
    /// The command could not do its work.
    case failed(String)
}

/// Runs a command: takes the checked arguments and the session, returns a value (usually a
/// record) or throws.
package typealias CommandHandler = (CommandInvocation, Session) throws -> Value

/// A built-in command: its table entry and what it does, in one type. `Session.builtins`
/// lists them all.
package protocol Command: Sendable {
    /// The command's name, arguments, options, flags, help and the fields of its record.
    static var spec: CommandSpec { get }
    /// Runs it with checked arguments; returns a value (usually a record whose fields are
    /// among `spec.resultFields`) or throws.
    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value
}

/// The command table and the handler of each command.
package struct CommandRegistry {
    package private(set) var table = CommandTable()
    private var handlers: [String: CommandHandler] = [:]

    package init() {}

    /// Adds (or replaces) a command.
    package mutating func register(_ spec: CommandSpec, handler: @escaping CommandHandler) {
        table.add(spec)
        handlers[spec.name] = handler
    }

    package func handler(for name: String) -> CommandHandler? { handlers[name] }
}
