/// What a value looks like to the binder: enough to check it against an `ArgumentSpec`. The
/// binder makes one from a literal; the interpreter makes one from a computed value.
package indirect enum ValueShape: Sendable, Equatable {
    case number(Double), string(String), word(String), bool(Bool), ratio(Int, Int), list([ValueShape]), record, none

    /// How the kind is named in "found ..." messages.
    package var kindName: String {
        switch self {
        case .number: "a number"
        case .string: "a string"
        case .word: "a word"
        case .bool: "a boolean"
        case .ratio: "a ratio"
        case .list: "a list"
        case .record: "a record"
        case .none: "none"
        }
    }

    /// The value as shown in messages.
    package var shown: String {
        switch self {
        case .number(let value): formatNumber(value)
        case .string(let text): "\"\(text)\""
        case .word(let word): word
        case .bool(let value): value ? "true" : "false"
        case .ratio(let a, let b): "\(a):\(b)"
        case .list(let items): "[" + items.map(\.shown).joined(separator: ", ") + "]"
        case .record: "a record"
        case .none: "none"
        }
    }
}

/// Why a value does not fit an argument.
package enum ValueProblem: Sendable, Equatable {
    case wrongType(expected: ValueType, found: ValueShape)
    case notInteger(Double)
    case outOfRange(Double, ClosedRange<Double>)
    case notAllowed(String, allowed: [String])
}

extension ArgumentSpec {
    /// Checks a value against the argument's type, allowed values and range.
    package func check(_ value: ValueShape) -> ValueProblem? {
        // `clip=none`: the keyword is the word where the word is one of the choices.
        if case .none = value, allowed.contains("none") { return nil }
        if let problem = ArgumentSpec.checkType(type, value) { return problem }
        if !allowed.isEmpty {
            let text: String? =
                switch value {
                case .word(let word): word
                case .string(let string): string
                case .number(let number): formatNumber(number)
                default: nil
                }
            if let text, !allowed.contains(text) { return .notAllowed(text, allowed: allowed) }
        }
        if let range, case .number(let number) = value, !range.contains(number) {
            return .outOfRange(number, range)
        }
        return nil
    }

    static func checkType(_ type: ValueType, _ value: ValueShape) -> ValueProblem? {
        switch (type, value) {
        case (.any, _), (.number, .number), (.bool, .bool), (.ratio, .ratio):
            return nil
        case (.integer, .number(let number)):
            return number == number.rounded() ? nil : .notInteger(number)
        case (.string, .string), (.string, .word), (.word, .word), (.word, .string), (.pattern, .word),
            (.pattern, .string), (.path, .word), (.path, .string):
            return nil
        case (.list(let element), .list(let items)):
            for item in items {
                if let problem = checkType(element, item) { return problem }
            }
            return nil
        default:
            return .wrongType(expected: type, found: value)
        }
    }
}
