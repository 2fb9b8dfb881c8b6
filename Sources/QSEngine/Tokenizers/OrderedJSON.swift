import Foundation

/// A JSON value with ordered object keys, for building tokenizer.json; written by the engine's
/// JSON writer (`StrictJSON`), two-space indents, arrays of scalars on one line.
indirect enum OrderedJSON: Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case string(String)
    case array([OrderedJSON])
    case object([(String, OrderedJSON)])

    static func optional(_ value: String?) -> OrderedJSON { value.map { .string($0) } ?? .null }
    static func optional(_ value: Bool?) -> OrderedJSON { value.map { .bool($0) } ?? .null }

    /// The same value as the engine's JSON type.
    var strict: StrictJSON {
        switch self {
        case .null: .null
        case .bool(let value): .bool(value)
        case .int(let value): .integer(value)
        case .string(let value): .string(value)
        case .array(let items): .array(items.map(\.strict))
        case .object(let members): .object(members.map { StrictJSON.Member($0.0, $0.1.strict) })
        }
    }

    /// The UTF-8 text, pretty-printed, with a final newline.
    func serialized() -> Data {
        Data((strict.serialized(indent: 2) + "\n").utf8)
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
