/// The element types a stored tensor can have: plain numeric types, and the packed block
/// types of GGUF, whose elements come in fixed-size blocks with their own scales.
package enum DType: String, Sendable, CaseIterable, Hashable {
    case f64, f32, f16, bf16, i64, i32, i16, i8, u8, bool
    /// Float8 e4m3 ("fn"), as FP8 checkpoints store weights.
    case f8_e4m3
    case q4_0, q4_1, q5_0, q5_1, q8_0, q2_K, q3_K, q4_K, q5_K, q6_K

    /// Elements per block: 1 for plain types, 32 or 256 for packed types.
    package var blockSize: Int {
        switch self {
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0: 32
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K: 256
        default: 1
        }
    }

    /// Bytes per block (per element for plain types).
    package var bytesPerBlock: Int {
        switch self {
        case .f64, .i64: 8
        case .f32, .i32: 4
        case .f16, .bf16, .i16: 2
        case .i8, .u8, .bool, .f8_e4m3: 1
        case .q4_0: 18
        case .q4_1: 20
        case .q5_0: 22
        case .q5_1: 24
        case .q8_0: 34
        case .q2_K: 84
        case .q3_K: 110
        case .q4_K: 144
        case .q5_K: 176
        case .q6_K: 210
        }
    }

    /// Whether this is a packed block type.
    package var isQuantized: Bool { blockSize > 1 }

    /// Whether this is a floating-point plain type.
    package var isFloatingPoint: Bool { self == .f64 || self == .f32 || self == .f16 || self == .bf16 || self == .f8_e4m3 }

    /// Bytes needed for `count` elements, or nil when `count` is not a whole number of blocks
    /// or the product overflows.
    package func byteCount(elements count: Int) -> Int? {
        guard count >= 0, count % blockSize == 0 else { return nil }
        let (bytes, overflow) = (count / blockSize).multipliedReportingOverflow(by: bytesPerBlock)
        return overflow ? nil : bytes
    }

    /// The safetensors spelling of a plain type ("F32", "BF16", ...); nil for packed types.
    package var safetensorsName: String? {
        switch self {
        case .f64: "F64"
        case .f32: "F32"
        case .f16: "F16"
        case .bf16: "BF16"
        case .i64: "I64"
        case .i32: "I32"
        case .i16: "I16"
        case .i8: "I8"
        case .u8: "U8"
        case .bool: "BOOL"
        case .f8_e4m3: "F8_E4M3"
        default: nil
        }
    }

    /// The plain type with this safetensors spelling.
    package init?(safetensorsName name: String) {
        guard let match = DType.allCases.first(where: { $0.safetensorsName == name }) else { return nil }
        self = match
    }
}

/// The number of elements of a shape, or nil when a dimension is negative or the product overflows.
package func elementCount(_ shape: [Int]) -> Int? {
    var count = 1
    for dim in shape {
        guard dim >= 0 else { return nil }
        let (product, overflow) = count.multipliedReportingOverflow(by: dim)
        if overflow { return nil }
        count = product
    }
    return count
}
