/// A bounds-checked little-endian reader over the header of a GGUF file. Every read checks
/// what is left, so a truncated or corrupt header gives an error, never an out-of-bounds read.
struct GGUFCursor {
    /// How deep arrays may nest; real files nest at most once.
    static let maximumArrayDepth = 8

    let bytes: UnsafeRawBufferPointer
    let path: String
    private(set) var position = 0

    init(bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
    }

    var remaining: Int { bytes.count - position }

    func error(_ subject: String?, _ message: String) -> EngineError {
        EngineError(path: path, subject: subject, message)
    }

    mutating func integer<T: FixedWidthInteger>(_: T.Type, _ what: String, subject: String?) throws -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else {
            throw error(subject, "file ends at byte \(bytes.count) while reading \(what) (\(size) bytes at offset \(position))")
        }
        let value = T(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: T.self))
        position += size
        return value
    }

    /// A u64 count or length, which must fit in what is left of the file when each item takes
    /// at least `itemSize` bytes.
    mutating func count(_ what: String, itemSize: Int, subject: String?) throws -> Int {
        let start = position
        let raw = try integer(UInt64.self, what, subject: subject)
        let limit = UInt64(remaining / max(itemSize, 1))
        guard raw <= limit else {
            throw error(
                subject,
                "\(what) \(raw) at offset \(start) is larger than the rest of the file allows (at most \(limit))")
        }
        return Int(raw)
    }

    mutating func string(_ what: String, subject: String?) throws -> String {
        let length = try count("length of \(what)", itemSize: 1, subject: subject)
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position ..< position + length]), as: UTF8.self)
        position += length
        return text
    }

    mutating func valueType(_ what: String, subject: String?) throws -> GGUFValueType {
        let start = position
        let raw = try integer(UInt32.self, what, subject: subject)
        guard let type = GGUFValueType(rawValue: raw) else {
            throw error(subject, "unknown metadata value type \(raw) at offset \(start) (expected 0 to 12)")
        }
        return type
    }

    mutating func value(of type: GGUFValueType, key: String, depth: Int = 0) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try integer(UInt8.self, "a u8 value", subject: key))
        case .int8: return .int8(try integer(Int8.self, "an i8 value", subject: key))
        case .uint16: return .uint16(try integer(UInt16.self, "a u16 value", subject: key))
        case .int16: return .int16(try integer(Int16.self, "an i16 value", subject: key))
        case .uint32: return .uint32(try integer(UInt32.self, "a u32 value", subject: key))
        case .int32: return .int32(try integer(Int32.self, "an i32 value", subject: key))
        case .uint64: return .uint64(try integer(UInt64.self, "a u64 value", subject: key))
        case .int64: return .int64(try integer(Int64.self, "an i64 value", subject: key))
        case .float32: return .float32(Float(bitPattern: try integer(UInt32.self, "an f32 value", subject: key)))
        case .float64: return .float64(Double(bitPattern: try integer(UInt64.self, "an f64 value", subject: key)))
        case .bool:
            let start = position
            let raw = try integer(UInt8.self, "a bool value", subject: key)
            guard raw <= 1 else { throw error(key, "bool value \(raw) at offset \(start) is neither 0 nor 1") }
            return .bool(raw == 1)
        case .string:
            return .string(try string("a string value", subject: key))
        case .array:
            guard depth < Self.maximumArrayDepth else {
                throw error(key, "arrays nest deeper than \(Self.maximumArrayDepth) levels at offset \(position)")
            }
            let elementType = try valueType("the element type of an array", subject: key)
            let count = try count("array length", itemSize: elementType.minimumEncodedSize, subject: key)
            var elements: [GGUFValue] = []
            elements.reserveCapacity(count)
            for _ in 0 ..< count {
                elements.append(try value(of: elementType, key: key, depth: depth + 1))
            }
            return .array(elementType, elements)
        }
    }

    /// Moves to the next multiple of `alignment`; false when that is past the end of the file.
    mutating func align(to alignment: Int) -> Bool {
        let padding = (alignment - position % alignment) % alignment
        guard padding <= remaining else { return false }
        position += padding
        return true
    }
}
