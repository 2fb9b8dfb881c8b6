import QSLanguage

/// A value of the language.
package indirect enum Value: Sendable, Equatable, CustomStringConvertible {
    /// The absence of a value: what a statement without a result gives.
    case none
    case bool(Bool)
    /// A number; percentages are their fraction (`30%` is 0.3).
    case number(Double)
    case string(String)
    /// A bare word: a layer pattern, a path, or a name such as `shakespeare`.
    case pattern(String)
    /// `2:4`.
    case ratio(Int, Int)
    case list([Value])
    /// What a command returns: named fields in order.
    case record(Record)

    /// The value as `print` and interpolation show it.
    package var description: String {
        switch self {
        case .none: "none"
        case .bool(let value): value ? "true" : "false"
        case .number(let value): formatNumber(value)
        case .string(let text), .pattern(let text): text
        case .ratio(let a, let b): "\(a):\(b)"
        case .list(let items): "[" + items.map(\.quoted).joined(separator: ", ") + "]"
        case .record(let record): record.description
        }
    }

    /// As `description`, but strings in quotes (inside lists and records).
    var quoted: String {
        if case .string(let text) = self { return "\"\(text)\"" }
        return description
    }

    /// How the kind of the value is named in messages: "a number", "a record", ...
    package var kindName: String {
        switch self {
        case .none: "none"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .pattern: "a word"
        case .ratio: "a ratio"
        case .list: "a list"
        case .record: "a record"
        }
    }

    /// The kind and the value, for messages: `a number (3)`.
    var shownWithKind: String {
        switch self {
        case .none, .record: kindName
        default: "\(kindName) (\(quoted))"
        }
    }

    /// The value as the binder checks it against an argument spec.
    package var shape: ValueShape {
        switch self {
        case .none: .none
        case .bool(let value): .bool(value)
        case .number(let value): .number(value)
        case .string(let text): .string(text)
        case .pattern(let word): .word(word)
        case .ratio(let a, let b): .ratio(a, b)
        case .list(let items): .list(items.map(\.shape))
        case .record: .record
        }
    }

    /// The value of a constant from a command table.
    package init(_ constant: Constant) {
        switch constant {
        case .number(let value): self = .number(value)
        case .string(let text): self = .string(text)
        case .word(let word): self = .pattern(word)
        case .bool(let value): self = .bool(value)
        case .ratio(let a, let b): self = .ratio(a, b)
        }
    }

    /// The number, if this is one.
    package var number: Double? {
        if case .number(let value) = self { return value }
        return nil
    }

    /// The text of a string or a bare word.
    package var text: String? {
        switch self {
        case .string(let text), .pattern(let text): text
        default: nil
        }
    }

    /// The record, if this is one.
    package var record: Record? {
        if case .record(let record) = self { return record }
        return nil
    }

    /// How many lists and records nest in this value (0 for a number), counting no further than
    /// `limit`: values are never built deeper, so the walk stays bounded.
    func nestingDepth(limit: Int) -> Int {
        guard limit > 0 else { return 0 }
        var deepest = 0
        switch self {
        case .list(let items):
            for item in items where deepest < limit - 1 { deepest = max(deepest, item.nestingDepth(limit: limit - 1)) }
        case .record(let record):
            for field in record.fields where deepest < limit - 1 { deepest = max(deepest, field.value.nestingDepth(limit: limit - 1)) }
        default:
            return 0
        }
        return 1 + deepest
    }
}

/// The largest values a script may build: lists, strings and nesting beyond these are an error
/// at the expression that would make them (a loop that doubles a list would otherwise take all
/// memory, and freeing a list nested 65,536 deep would take all the stack).
package enum ValueLimits {
    package static let listLength = 1_000_000
    package static let stringBytes = 16 << 20
    package static let depth = 100
}

/// Named fields in a fixed order: what a command returns (`r.ppl`, `r.size_mb`).
package struct Record: Sendable, Equatable, CustomStringConvertible {
    package private(set) var fields: [(name: String, value: Value)]

    package init(_ fields: [(name: String, value: Value)] = []) {
        self.fields = []
        for field in fields { self[field.name] = field.value }
    }

    package subscript(name: String) -> Value? {
        get { fields.first { $0.name == name }?.value }
        set {
            if let position = fields.firstIndex(where: { $0.name == name }) {
                if let newValue { fields[position].value = newValue } else { fields.remove(at: position) }
            } else if let newValue {
                fields.append((name, newValue))
            }
        }
    }

    package var names: [String] { fields.map(\.name) }

    package var description: String {
        "{" + fields.map { "\($0.name): \($0.value.quoted)" }.joined(separator: ", ") + "}"
    }

    package static func == (lhs: Record, rhs: Record) -> Bool {
        lhs.fields.count == rhs.fields.count && zip(lhs.fields, rhs.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
}
