/// The tensor element types a GGUF file may declare (ggml.h `ggml_type`). All are known so
/// that a file's layout can be checked; `dtype` says which ones qs can dequantize.
package enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21, iq2_s = 22, iq4_xs = 23
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_m = 29, bf16 = 30
    case tq1_0 = 34, tq2_0 = 35, mxfp4 = 39, nvfp4 = 40, q1_0 = 41

    /// Elements per block (1 for plain types).
    package var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16, .f64, .i8, .i16, .i32, .i64: 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1, .iq4_nl, .mxfp4: 32
        case .nvfp4: 64
        case .q1_0: 128
        default: 256
        }
    }

    /// Bytes per block (ggml `type_size`).
    package var bytesPerBlock: Int {
        switch self {
        case .f32, .i32: 4
        case .f16, .bf16, .i16: 2
        case .i8: 1
        case .f64, .i64: 8
        case .q4_0, .iq4_nl: 18
        case .q4_1: 20
        case .q5_0: 22
        case .q5_1: 24
        case .q8_0: 34
        case .q8_1: 40
        case .q2_K: 84
        case .q3_K: 110
        case .q4_K: 144
        case .q5_K: 176
        case .q6_K: 210
        case .q8_K: 292
        case .iq2_xxs: 66
        case .iq2_xs: 74
        case .iq3_xxs: 98
        case .iq1_s: 50
        case .iq3_s: 110
        case .iq2_s: 82
        case .iq4_xs: 136
        case .iq1_m: 56
        case .tq1_0: 54
        case .tq2_0: 66
        case .mxfp4: 17
        case .nvfp4: 36
        case .q1_0: 18
        }
    }

    /// The name ggml prints ("Q4_K", "BF16").
    package var name: String {
        String(describing: self).uppercased()
    }

    /// The dtype qs reads this type as, or nil when qs cannot dequantize it.
    package var dtype: DType? {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        case .f64: .f64
        case .i8: .i8
        case .i16: .i16
        case .i32: .i32
        case .i64: .i64
        case .q4_0: .q4_0
        case .q4_1: .q4_1
        case .q5_0: .q5_0
        case .q5_1: .q5_1
        case .q8_0: .q8_0
        case .q2_K: .q2_K
        case .q3_K: .q3_K
        case .q4_K: .q4_K
        case .q5_K: .q5_K
        case .q6_K: .q6_K
        default: nil
        }
    }

    /// The GGUF type for a dtype, or nil for the dtypes GGUF has no type for (u8, bool).
    package init?(_ dtype: DType) {
        guard let match = GGMLType.allCases.first(where: { $0.dtype == dtype }) else { return nil }
        self = match
    }
}
