/// A JSON value parsed strictly (RFC 8259 grammar, valid UTF-8, no duplicate keys, bounded
/// nesting), keeping integers exact and object members in file order. Used for safetensors
/// headers, index files and config.json, where a wrong type must be reported, not guessed.
package indirect enum StrictJSON: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A number written without fraction or exponent that fits in an `Int`.
    case integer(Int)
    /// Any other number.
    case number(Double)
    case string(String)
    case array([StrictJSON])
    /// Members in the order they were written (keys are unique when parsed).
    case object([Member])

    /// One `"key": value` pair of an object.
    package struct Member: Sendable, Equatable {
        package var key: String
        package var value: StrictJSON

        package init(_ key: String, _ value: StrictJSON) {
            self.key = key
            self.value = value
        }
    }

    /// The deepest nesting the parser accepts (guards the stack against hostile input).
    package static let maximumDepth = 256

    /// The value of `key` when this is an object that has it.
    package subscript(key: String) -> StrictJSON? {
        guard case .object(let members) = self else { return nil }
        return members.first(where: { $0.key == key })?.value
    }

    /// The object members, or nil when this is not an object.
    package var members: [Member]? {
        if case .object(let members) = self { return members }
        return nil
    }

    /// A short name of the value's type, for error messages.
    package var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .integer: "an integer"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// Parses one JSON value that fills `bytes` (surrounding whitespace allowed).
    /// The error message says what was wrong and at which byte.
    package static func parse(_ bytes: UnsafeRawBufferPointer) throws(StrictJSONError) -> StrictJSON {
        var parser = StrictJSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.position == bytes.count else { throw parser.failure("unexpected data after the JSON value") }
        return value
    }

    /// Parses one JSON value from `bytes`.
    package static func parse(_ bytes: [UInt8]) throws(StrictJSONError) -> StrictJSON {
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(StrictJSONError) -> StrictJSON in try parse(buffer) }
        }
        return try result.get()
    }

    /// The value as compact JSON text, members in their stored order.
    package func serialized() -> String {
        var out = ""
        write(to: &out, indent: nil, level: 0)
        return out
    }

    /// The value as JSON text indented by `indent` spaces a level, members in their stored order.
    package func serialized(indent: Int) -> String {
        var out = ""
        write(to: &out, indent: indent, level: 0)
        return out
    }

    private func write(to out: inout String, indent: Int?, level: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let value): out += value ? "true" : "false"
        case .integer(let value): out += String(value)
        case .number(let value): out += Self.format(value)
        case .string(let value): Self.writeString(value, to: &out)
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            // Arrays of scalars (a shape, a merge list) stay on one line.
            if indent != nil, !items.contains(where: \.isContainer) {
                out += "["
                for (index, item) in items.enumerated() {
                    if index > 0 { out += ", " }
                    item.write(to: &out, indent: nil, level: 0)
                }
                out += "]"
                return
            }
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += "," }
                Self.newline(&out, indent: indent, level: level + 1)
                item.write(to: &out, indent: indent, level: level + 1)
            }
            Self.newline(&out, indent: indent, level: level)
            out += "]"
        case .object(let members):
            if members.isEmpty { out += "{}"; return }
            out += "{"
            for (index, member) in members.enumerated() {
                if index > 0 { out += "," }
                Self.newline(&out, indent: indent, level: level + 1)
                Self.writeString(member.key, to: &out)
                out += indent == nil ? ":" : ": "
                member.value.write(to: &out, indent: indent, level: level + 1)
            }
            Self.newline(&out, indent: indent, level: level)
            out += "}"
        }
    }

    private var isContainer: Bool {
        switch self {
        case .array, .object: true
        default: false
        }
    }

    private static func newline(_ out: inout String, indent: Int?, level: Int) {
        guard let indent else { return }
        out += "\n"
        out += String(repeating: " ", count: indent * level)
    }

    /// Shortest round-tripping decimal, always with a '.' or exponent so it reads back as a
    /// float; non-finite values (which JSON cannot spell) as null.
    private static func format(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        return "\(value)"
    }

    private static func writeString(_ value: String, to out: inout String) {
        out += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

/// Why a JSON text did not parse, and at which byte offset.
package struct StrictJSONError: Error, Sendable, Equatable, CustomStringConvertible {
    package var offset: Int
    package var message: String

    package var description: String { "invalid JSON at byte \(offset): \(message)" }
}

/// A cursor over JSON bytes; each `parse` method consumes one production.
private struct StrictJSONParser {
    let bytes: UnsafeRawBufferPointer
    var position = 0

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    func failure(_ message: String) -> StrictJSONError { StrictJSONError(offset: position, message: message) }

    var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    mutating func parseValue(depth: Int) throws(StrictJSONError) -> StrictJSON {
        guard let byte = current else { throw failure("unexpected end of input, expected a value") }
        switch byte {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectWord("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectWord("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectWord("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0") ... UInt8(ascii: "9"): return try parseNumber()
        default: throw failure("unexpected character \(Self.describe(byte)), expected a value")
        }
    }

    static func describe(_ byte: UInt8) -> String {
        (0x21 ... 0x7E).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "0x" + String(byte, radix: 16)
    }

    mutating func expectWord(_ word: StaticString) throws(StrictJSONError) {
        let start = position
        let count = word.utf8CodeUnitCount
        guard bytes.count - position >= count else { throw failure("unexpected end of input in '\(word)'") }
        for index in 0 ..< count where bytes[start + index] != word.utf8Start[index] {
            position = start + index
            throw failure("invalid literal, expected '\(word)'")
        }
        position += count
    }

    mutating func expect(_ character: Unicode.Scalar, _ what: String) throws(StrictJSONError) {
        guard let byte = current else { throw failure("unexpected end of input, expected \(what)") }
        guard byte == UInt8(character.value) else { throw failure("unexpected character \(Self.describe(byte)), expected \(what)") }
        position += 1
    }

    mutating func parseObject(depth: Int) throws(StrictJSONError) -> StrictJSON {
        guard depth <= StrictJSON.maximumDepth else { throw failure("nesting deeper than \(StrictJSON.maximumDepth) levels") }
        position += 1
        var members: [StrictJSON.Member] = []
        var seen: Set<String> = []
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            position += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            let keyStart = position
            guard current == UInt8(ascii: "\"") else {
                if let byte = current { throw failure("unexpected character \(Self.describe(byte)), expected a string key") }
                throw failure("unexpected end of input, expected a string key")
            }
            let key = try parseString()
            guard seen.insert(key).inserted else {
                position = keyStart
                throw failure("duplicate key \"\(key)\"")
            }
            skipWhitespace()
            try expect(":", "':' after a key")
            skipWhitespace()
            let value = try parseValue(depth: depth)
            members.append(StrictJSON.Member(key, value))
            skipWhitespace()
            guard let byte = current else { throw failure("unexpected end of input, expected ',' or '}'") }
            position += 1
            if byte == UInt8(ascii: "}") { return .object(members) }
            guard byte == UInt8(ascii: ",") else {
                position -= 1
                throw failure("unexpected character \(Self.describe(byte)), expected ',' or '}'")
            }
        }
    }

    mutating func parseArray(depth: Int) throws(StrictJSONError) -> StrictJSON {
        guard depth <= StrictJSON.maximumDepth else { throw failure("nesting deeper than \(StrictJSON.maximumDepth) levels") }
        position += 1
        var items: [StrictJSON] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            position += 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try parseValue(depth: depth))
            skipWhitespace()
            guard let byte = current else { throw failure("unexpected end of input, expected ',' or ']'") }
            position += 1
            if byte == UInt8(ascii: "]") { return .array(items) }
            guard byte == UInt8(ascii: ",") else {
                position -= 1
                throw failure("unexpected character \(Self.describe(byte)), expected ',' or ']'")
            }
        }
    }

    mutating func parseNumber() throws(StrictJSONError) -> StrictJSON {
        let start = position
        var isInteger = true
        if current == UInt8(ascii: "-") { position += 1 }
        guard let first = current, Self.isDigit(first) else { throw failure("expected a digit") }
        if first == UInt8(ascii: "0") {
            position += 1
            if let next = current, Self.isDigit(next) { throw failure("leading zero in a number") }
        } else {
            skipDigits()
        }
        if current == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            guard let next = current, Self.isDigit(next) else { throw failure("expected a digit after '.'") }
            skipDigits()
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            isInteger = false
            position += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            guard let next = current, Self.isDigit(next) else { throw failure("expected a digit in the exponent") }
            skipDigits()
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start ..< position]), as: UTF8.self)
        if isInteger, let value = Int(text) { return .integer(value) }
        guard let value = Double(text) else {
            position = start
            throw failure("invalid number")
        }
        return .number(value)
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    mutating func skipDigits() {
        while let byte = current, Self.isDigit(byte) { position += 1 }
    }

    mutating func parseString() throws(StrictJSONError) -> String {
        position += 1
        var scalars = String.UnicodeScalarView()
        var runStart = position
        while true {
            guard let byte = current else { throw failure("unterminated string") }
            if byte == UInt8(ascii: "\"") {
                try appendRun(from: runStart, to: &scalars)
                position += 1
                return String(scalars)
            }
            if byte < 0x20 { throw failure("control character \(Self.describe(byte)) inside a string") }
            if byte == UInt8(ascii: "\\") {
                try appendRun(from: runStart, to: &scalars)
                position += 1
                scalars.append(try parseEscape())
                runStart = position
                continue
            }
            position += 1
        }
    }

    /// Appends the raw bytes `runStart ..< position` after checking that they are valid UTF-8.
    mutating func appendRun(from runStart: Int, to scalars: inout String.UnicodeScalarView) throws(StrictJSONError) {
        guard position > runStart else { return }
        let run = UnsafeRawBufferPointer(rebasing: bytes[runStart ..< position])
        guard let text = String(validating: run, as: UTF8.self) else {
            position = runStart
            throw failure("string is not valid UTF-8")
        }
        scalars.append(contentsOf: text.unicodeScalars)
    }

    mutating func parseEscape() throws(StrictJSONError) -> Unicode.Scalar {
        guard let byte = current else { throw failure("unterminated escape") }
        position += 1
        switch byte {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let high = try parseHex4()
            if (0xD800 ..< 0xDC00).contains(high) {
                guard current == UInt8(ascii: "\\"), position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "u") else {
                    throw failure("unpaired surrogate \\u\(String(high, radix: 16))")
                }
                position += 2
                let low = try parseHex4()
                guard (0xDC00 ..< 0xE000).contains(low) else { throw failure("invalid low surrogate \\u\(String(low, radix: 16))") }
                let value = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                guard let scalar = Unicode.Scalar(value) else { throw failure("invalid surrogate pair") }
                return scalar
            }
            guard let scalar = Unicode.Scalar(high) else { throw failure("unpaired surrogate \\u\(String(high, radix: 16))") }
            return scalar
        default:
            position -= 1
            throw failure("invalid escape \\\(Self.describe(byte))")
        }
    }

    mutating func parseHex4() throws(StrictJSONError) -> UInt32 {
        guard bytes.count - position >= 4 else { throw failure("unexpected end of input in \\u escape") }
        var value: UInt32 = 0
        for _ in 0 ..< 4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0") ... UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a") ... UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A") ... UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw failure("invalid hex digit \(Self.describe(byte)) in \\u escape")
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }
}
