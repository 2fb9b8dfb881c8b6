/// The type a command argument or option takes.
package indirect enum ValueType: Sendable, Equatable, CustomStringConvertible {
    case number, integer, string, word, pattern, path, bool, ratio, any
    case list(ValueType)

    /// How the type is named in help and in "expected ..." messages.
    package var description: String {
        switch self {
        case .number: "a number"
        case .integer: "an integer"
        case .string: "a string"
        case .word: "a word"
        case .pattern: "a layer pattern"
        case .path: "a path"
        case .bool: "true or false"
        case .ratio: "a ratio like 2:4"
        case .any: "any value"
        case .list(let element): "a list of \(element.plural)"
        }
    }

    /// The short placeholder used in usage lines: `N`, `TEXT`, `PATTERN`, ...
    package var placeholder: String {
        switch self {
        case .number: "X"
        case .integer: "N"
        case .string: "TEXT"
        case .word: "WORD"
        case .pattern: "PATTERN"
        case .path: "PATH"
        case .bool: "BOOL"
        case .ratio: "N:M"
        case .any: "VALUE"
        case .list(let element): "[\(element.placeholder), ...]"
        }
    }

    var plural: String {
        switch self {
        case .number: "numbers"
        case .integer: "integers"
        case .string: "strings"
        case .word: "words"
        case .pattern: "layer patterns"
        case .path: "paths"
        case .bool: "booleans"
        case .ratio: "ratios"
        case .any: "values"
        case .list(let element): "lists of \(element.plural)"
        }
    }
}

/// A constant a command table can state: a default value.
package enum Constant: Sendable, Equatable, CustomStringConvertible {
    case number(Double), string(String), word(String), bool(Bool), ratio(Int, Int)

    package var description: String {
        switch self {
        case .number(let value): formatNumber(value)
        case .string(let text): "\"\(text)\""
        case .word(let word): word
        case .bool(let value): value ? "true" : "false"
        case .ratio(let a, let b): "\(a):\(b)"
        }
    }
}

/// Formats a number the way the language prints it: integers without a fraction, others with up
/// to six significant digits.
package func formatNumber(_ value: Double) -> String {
    if value.isNaN { return "nan" }
    if value.isInfinite { return value < 0 ? "-inf" : "inf" }
    if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
    return roundedSignificant(value, digits: 6)
}

private func roundedSignificant(_ value: Double, digits: Int) -> String {
    let magnitude = value == 0 ? 0 : Int((Swift.abs(value)).log10Floor)
    if magnitude < -5 || magnitude >= 15 { return "\(value)" }
    let decimals = max(0, digits - 1 - magnitude)
    let scale = pow10(decimals)
    let rounded = (value * scale).rounded() / scale
    var text = "\(rounded)"
    if text.contains("e") { return "\(value)" }
    if text.contains(".") {
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
    }
    return text
}

private func pow10(_ n: Int) -> Double {
    var result = 1.0
    for _ in 0..<n { result *= 10 }
    return result
}

extension Double {
    fileprivate var log10Floor: Double {
        var value = self
        var exponent = 0.0
        while value >= 10 {
            value /= 10
            exponent += 1
        }
        while value < 1 && value > 0 {
            value *= 10
            exponent -= 1
        }
        return exponent
    }
}

/// A positional argument or a `key=value` option of a command.
package struct ArgumentSpec: Sendable, Equatable {
    package var name: String
    package var type: ValueType
    package var help: String
    /// Whether the argument must be given (only positionals can be required).
    package var isRequired: Bool
    /// The value used when the argument is not given.
    package var defaultValue: Constant?
    /// When not empty, the only words (or numbers, as printed) accepted.
    package var allowed: [String]
    /// When set, the inclusive range a number must fall in.
    package var range: ClosedRange<Double>?

    package init(
        _ name: String, _ type: ValueType, help: String, required: Bool = false, default defaultValue: Constant? = nil,
        allowed: [String] = [], range: ClosedRange<Double>? = nil
    ) {
        self.name = name
        self.type = type
        self.help = help
        self.isRequired = required
        self.defaultValue = defaultValue
        self.allowed = allowed
        self.range = range
    }
}

/// A bare-word switch of a command (`asym`). Flags in the same group exclude each other.
package struct FlagSpec: Sendable, Equatable {
    package var name: String
    package var help: String
    package var group: String?

    package init(_ name: String, help: String, group: String? = nil) {
        self.name = name
        self.help = help
        self.group = group
    }
}

/// Everything about one command, as plain data: the binder, `help`, completion, `qs check` and
/// the language reference all read it.
package struct CommandSpec: Sendable, Equatable {
    package var name: String
    /// One line for `help` listings.
    package var summary: String
    /// A longer explanation for `help NAME` and the reference.
    package var discussion: String
    package var positionals: [ArgumentSpec]
    package var options: [ArgumentSpec]
    package var flags: [FlagSpec]
    /// The fields of the record the command returns, with one line each.
    package var resultFields: [(name: String, help: String)]
    package var examples: [String]

    package init(
        _ name: String, summary: String, discussion: String = "", positionals: [ArgumentSpec] = [],
        options: [ArgumentSpec] = [], flags: [FlagSpec] = [], resultFields: [(name: String, help: String)] = [],
        examples: [String] = []
    ) {
        self.name = name
        self.summary = summary
        self.discussion = discussion
        self.positionals = positionals
        self.options = options
        self.flags = flags
        self.resultFields = resultFields
        self.examples = examples
    }

    package static func == (lhs: CommandSpec, rhs: CommandSpec) -> Bool {
        lhs.name == rhs.name && lhs.summary == rhs.summary && lhs.discussion == rhs.discussion
            && lhs.positionals == rhs.positionals && lhs.options == rhs.options && lhs.flags == rhs.flags
            && lhs.resultFields.map(\.name) == rhs.resultFields.map(\.name) && lhs.examples == rhs.examples
    }

    /// The positional or option of that name.
    package func argument(named name: String) -> ArgumentSpec? {
        positionals.first { $0.name == name } ?? options.first { $0.name == name }
    }

    /// `quantize PATTERN [bits=N] [group=N] [sym|asym]`.
    package var usage: String {
        var parts = [name]
        for positional in positionals {
            let shown = positional.allowed.isEmpty ? positional.name.uppercased() : positional.allowed.joined(separator: "|")
            parts.append(positional.isRequired ? shown : "[\(shown)]")
        }
        for option in options {
            let value = option.allowed.isEmpty ? option.type.placeholder : option.allowed.joined(separator: "|")
            parts.append("[\(option.name)=\(value)]")
        }
        var groups: [String: [String]] = [:]
        var order: [String] = []
        for flag in flags {
            let key = flag.group ?? flag.name
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(flag.name)
        }
        for key in order { parts.append("[\(groups[key]!.joined(separator: "|"))]") }
        return parts.joined(separator: " ")
    }
}

/// The commands a session knows, in the order they were added.
package struct CommandTable: Sendable, Equatable {
    package private(set) var commands: [CommandSpec] = []
    private var positions: [String: Int] = [:]

    package init(_ commands: [CommandSpec] = []) {
        for command in commands { add(command) }
    }

    /// Adds a command, replacing one of the same name.
    package mutating func add(_ spec: CommandSpec) {
        if let position = positions[spec.name] {
            commands[position] = spec
        } else {
            positions[spec.name] = commands.count
            commands.append(spec)
        }
    }

    package subscript(name: String) -> CommandSpec? {
        positions[name].map { commands[$0] }
    }

    package var names: [String] { commands.map(\.name) }
}
