import QSEngine

extension Value {
    /// The value as JSON, written by the engine's JSON writer: records as objects in field
    /// order, patterns and strings as strings, ratios as "n:m", none (and non-finite numbers)
    /// as null.
    package var json: String { jsonValue.serialized() }

    var jsonValue: StrictJSON {
        switch self {
        case .none: return .null
        case .bool(let value): return .bool(value)
        case .number(let value):
            guard value.isFinite else { return .null }
            if value == value.rounded(), abs(value) < 1e15 { return .integer(Int(value)) }
            return .number(value)
        case .string(let text), .pattern(let text): return .string(text)
        case .ratio(let a, let b): return .string("\(a):\(b)")
        case .list(let items): return .array(items.map(\.jsonValue))
        case .record(let record): return .object(record.fields.map { StrictJSON.Member($0.name, $0.value.jsonValue) })
        }
    }
}
