/// The type tag of a GGUF metadata value (gguf.md `gguf_metadata_value_type`).
package enum GGUFValueType: UInt32, Sendable, CaseIterable {
    case uint8 = 0, int8, uint16, int16, uint32, int32, float32, bool, string, array, uint64, int64, float64

    /// The fewest bytes one value of this type takes in a file: its fixed size, the u64
    /// length of a string, or the u32 element type and u64 count of an array.
    var minimumEncodedSize: Int {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64, .string: 8
        case .array: 12
        }
    }
}

/// A GGUF metadata value. Arrays keep their element type so that an empty array still says
/// what it holds; nested arrays are arrays of `.array` values.
package enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8)
    case int8(Int8)
    case uint16(UInt16)
    case int16(Int16)
    case uint32(UInt32)
    case int32(Int32)
    case float32(Float)
    case bool(Bool)
    case string(String)
    case array(GGUFValueType, [GGUFValue])
    case uint64(UInt64)
    case int64(Int64)
    case float64(Double)

    /// The type tag this value is stored with.
    package var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .array: .array
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        }
    }

    /// The value of an integer of any width, when it fits in `Int`.
    package var int: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(v)
        default: nil
        }
    }

    /// The value of a float or an integer, as a Double. A float32 becomes the shortest decimal
    /// that reads back as the same float (1e-05, not 9.999999747378752e-06), as transformers'
    /// config.json has it.
    package var double: Double? {
        switch self {
        case .float32(let v): Double(v.description) ?? Double(v)
        case .float64(let v): v
        default: int.map(Double.init)
        }
    }

    package var string: String? {
        if case .string(let v) = self { v } else { nil }
    }

    package var bool: Bool? {
        if case .bool(let v) = self { v } else { nil }
    }

    /// The elements of an array.
    package var array: [GGUFValue]? {
        if case .array(_, let values) = self { values } else { nil }
    }

    /// The elements of an array of strings.
    package var strings: [String]? {
        guard case .array(.string, let values) = self else { return nil }
        return values.map { $0.string ?? "" }
    }
}

/// One metadata entry, in the order the file lists them.
package struct GGUFKeyValue: Sendable, Equatable {
    package var key: String
    package var value: GGUFValue
}
