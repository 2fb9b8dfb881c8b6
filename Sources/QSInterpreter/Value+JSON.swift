import Foundation

extension Value {
    /// The value as JSON (records as objects in field order, patterns and strings as strings,
    /// ratios as "n:m", none as null).
    package var json: String {
        switch self {
        case .none: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .number(let value):
            guard value.isFinite else { return "null" }
            if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
            return "\(value)"
        case .string(let text), .pattern(let text): return Value.quoteJSON(text)
        case .ratio(let a, let b): return Value.quoteJSON("\(a):\(b)")
        case .list(let items): return "[" + items.map(\.json).joined(separator: ",") + "]"
        case .record(let record):
            return "{" + record.fields.map { Value.quoteJSON($0.name) + ":" + $0.value.json }.joined(separator: ",") + "}"
        }
    }

    static func quoteJSON(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
