import Foundation

/// A JSON value with ordered object keys, for writing tokenizer.json deterministically.
indirect enum OrderedJSON: Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case string(String)
    case array([OrderedJSON])
    case object([(String, OrderedJSON)])

    static func optional(_ value: String?) -> OrderedJSON { value.map { .string($0) } ?? .null }
    static func optional(_ value: Bool?) -> OrderedJSON { value.map { .bool($0) } ?? .null }

    /// The UTF-8 text, pretty-printed with two-space indents for objects (arrays of
    /// scalars stay on one line).
    func serialized() -> Data {
        var output: [UInt8] = []
        write(into: &output, indent: 0)
        output.append(0x0A)
        return Data(output)
    }

    private func write(into output: inout [UInt8], indent: Int) {
        switch self {
        case .null: output += Array("null".utf8)
        case .bool(let value): output += Array((value ? "true" : "false").utf8)
        case .int(let value): output += Array(String(value).utf8)
        case .string(let value): Self.writeString(value, into: &output)
        case .array(let items):
            let nested = items.contains { if case .object = $0 { return true }; if case .array = $0 { return true }; return false }
            output.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                if nested { Self.newline(into: &output, indent: indent + 1) }
                item.write(into: &output, indent: indent + 1)
            }
            if nested && !items.isEmpty { Self.newline(into: &output, indent: indent) }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            for (index, (key, value)) in members.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                Self.newline(into: &output, indent: indent + 1)
                Self.writeString(key, into: &output)
                output += Array(": ".utf8)
                value.write(into: &output, indent: indent + 1)
            }
            if !members.isEmpty { Self.newline(into: &output, indent: indent) }
            output.append(UInt8(ascii: "}"))
        }
    }

    private static func newline(into output: inout [UInt8], indent: Int) {
        output.append(0x0A)
        output += repeatElement(UInt8(ascii: " "), count: 2 * indent)
    }

    private static func writeString(_ value: String, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": output += Array("\\\"".utf8)
            case "\\": output += Array("\\\\".utf8)
            case "\n": output += Array("\\n".utf8)
            case "\r": output += Array("\\r".utf8)
            case "\t": output += Array("\\t".utf8)
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    output += Array(String(format: "\\u%04x", scalar.value).utf8)
                } else {
                    output += Array(String(scalar).utf8)
                }
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}

/// Typed access to a parsed JSON object, with errors that name the file and the key.
struct TokenizerJSONObject {
    let members: [String: Any]
    let path: String
    /// Where this object sits in the file, as a key path ("model", "pre_tokenizer.pretokenizers[1]").
    let location: String

    init(_ value: Any?, path: String, location: String) throws(EngineError) {
        guard let members = value as? [String: Any] else {
            throw EngineError(path: path, subject: location, "expected a JSON object")
        }
        self.members = members
        self.path = path
        self.location = location
    }

    func has(_ key: String) -> Bool { members[key].map { !($0 is NSNull) } ?? false }

    private func key(_ key: String) -> String { location.isEmpty ? key : "\(location).\(key)" }

    func string(_ name: String) throws(EngineError) -> String {
        guard let value = members[name] as? String else {
            throw EngineError(path: path, subject: key(name), "expected a string")
        }
        return value
    }

    func optionalString(_ name: String) throws(EngineError) -> String? {
        guard has(name) else { return nil }
        return try string(name)
    }

    func bool(_ name: String, default defaultValue: Bool) throws(EngineError) -> Bool {
        guard has(name) else { return defaultValue }
        guard let value = members[name] as? Bool else {
            throw EngineError(path: path, subject: key(name), "expected true or false")
        }
        return value
    }

    func optionalBool(_ name: String) throws(EngineError) -> Bool? {
        guard has(name) else { return nil }
        return try bool(name, default: false)
    }

    func int(_ name: String) throws(EngineError) -> Int {
        guard let value = Self.integer(members[name]) else {
            throw EngineError(path: path, subject: key(name), "expected an integer")
        }
        return value
    }

    func int(_ name: String, default defaultValue: Int) throws(EngineError) -> Int {
        guard has(name) else { return defaultValue }
        return try int(name)
    }

    func object(_ name: String) throws(EngineError) -> TokenizerJSONObject {
        try TokenizerJSONObject(members[name], path: path, location: key(name))
    }

    func optionalObject(_ name: String) throws(EngineError) -> TokenizerJSONObject? {
        guard has(name) else { return nil }
        return try object(name)
    }

    func array(_ name: String) throws(EngineError) -> [Any] {
        guard let value = members[name] as? [Any] else {
            throw EngineError(path: path, subject: key(name), "expected an array")
        }
        return value
    }

    func objects(_ name: String) throws(EngineError) -> [TokenizerJSONObject] {
        var result: [TokenizerJSONObject] = []
        for (index, item) in try array(name).enumerated() {
            result.append(try TokenizerJSONObject(item, path: path, location: "\(key(name))[\(index)]"))
        }
        return result
    }

    func unsupported(_ what: String, _ value: String) -> EngineError {
        EngineError(path: path, subject: location, "unsupported \(what) '\(value)'")
    }

    func error(_ name: String, _ message: String) -> EngineError {
        EngineError(path: path, subject: key(name), message)
    }

    static func integer(_ value: Any?) -> Int? {
        if let value = value as? Int { return value }
        if let value = value as? NSNumber, value.doubleValue == value.doubleValue.rounded() { return value.intValue }
        return nil
    }
}
