import Foundation

/// Quantization of fp32 rows into GGUF's 32-value block types, the reference way llama.cpp's
/// quantizer does it (ggml-quants.c `quantize_row_*_ref`, mirrored by the `gguf` package's
/// quants.py), so that qs's Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 blocks are bit-identical to
/// llama.cpp's for the same input. `x·id` and `+ ½` round separately, as ggml-quants.c is compiled
/// (no FMA contraction) and as the `gguf` package computes them.
///
/// Written here rather than linked: llama.cpp is not a Debian library qs can depend on, and
/// the reference quantizers are a few lines each.
package enum GGMLQuantize {
    /// The block types qs quantizes to from fp32 values.
    package static let types: [DType] = [.q8_0, .q4_0, .q4_1, .q5_0, .q5_1]

    /// Quantizes `count` values (a multiple of 32) into blocks of `type`, written to `out`
    /// (count / 32 × the type's block bytes).
    package static func quantize(_ values: UnsafePointer<Float>, count: Int, as type: DType, into out: UnsafeMutableRawPointer) {
        if superBlockTypes.contains(type) { return quantizeSuperBlocks(values, count: count, as: type, into: out) }
        precondition(count % 32 == 0, "GGMLQuantize: \(count) values are not whole blocks of 32")
        let blocks = count / 32
        let bytes = type.bytesPerBlock
        for block in 0 ..< blocks {
            let x = values + block * 32
            let y = out + block * bytes
            switch type {
            case .q8_0: q8_0(x, y)
            case .q4_0: q4_0(x, y)
            case .q4_1: q4_1(x, y)
            case .q5_0: q5_0(x, y)
            case .q5_1: q5_1(x, y)
            default: preconditionFailure("GGMLQuantize: \(type.rawValue) is not a 32-value block type qs quantizes to")
            }
        }
    }

    /// `values` as blocks of `type`.
    package static func quantize(_ values: [Float], as type: DType) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: values.count / type.blockSize * type.bytesPerBlock)
        values.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBytes { quantize(source.baseAddress!, count: values.count, as: type, into: $0.baseAddress!) }
        }
        return out
    }

    @inline(__always)
    private static func storeHalf(_ value: Float, _ at: UnsafeMutableRawPointer) {
        at.storeBytes(of: HalfConversion.floatToF16(value).littleEndian, as: UInt16.self)
    }

    /// The value of largest magnitude, with its sign (the first one on ties), and that magnitude.
    @inline(__always)
    private static func signedMaximum(_ x: UnsafePointer<Float>) -> (max: Float, amax: Float) {
        var amax: Float = 0
        var max: Float = 0
        for j in 0 ..< 32 where amax < abs(x[j]) {
            amax = abs(x[j])
            max = x[j]
        }
        return (max, amax)
    }

    /// The block's minimum m and 1/d for d = (max − m) / levels, with d and m stored as f16 at
    /// the start of the block (Q4_1, Q5_1).
    @inline(__always)
    private static func offsetGrid(_ x: UnsafePointer<Float>, levels: Float, _ y: UnsafeMutableRawPointer) -> (min: Float, id: Float) {
        var low = Float.greatestFiniteMagnitude
        var high = -Float.greatestFiniteMagnitude
        for j in 0 ..< 32 {
            low = Swift.min(low, x[j])
            high = Swift.max(high, x[j])
        }
        let d = (high - low) / levels
        storeHalf(d, y)
        storeHalf(low, y + 2)
        return (low, d != 0 ? 1 / d : 0)
    }

    /// C's `(int8_t)(v)` for the values these quantizers produce: truncation toward zero (what
    /// `Int(Float)` does inline, where `rounded(.towardZero)` calls libm's trunc), 0 for what is
    /// not finite, as x86 gives.
    @inline(__always)
    private static func truncated(_ value: Float) -> Int {
        guard value.isFinite else { return 0 }
        return Int(Swift.max(-128, Swift.min(127, value)))
    }

    /// d = max|x| / 127, q = round(x / d) half away from zero.
    private static func q8_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var amax: Float = 0
        for j in 0 ..< 32 { amax = Swift.max(amax, abs(x[j])) }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        storeHalf(d, y)
        let qs = (y + 2).assumingMemoryBound(to: Int8.self)
        for j in 0 ..< 32 {
            // roundf (half away from zero) without the libm call: |v| + ½ is exact in double.
            // (A value that is not finite, from an id that overflowed, is 0, as x86 gives.)
            let v = Double(x[j] * id)
            qs[j] = v.isFinite ? Int8(truncatingIfNeeded: Int32(v + (v < 0 ? -0.5 : 0.5))) : 0
        }
    }

    /// d = max / −8 (the signed value of largest magnitude), q = min(15, trunc(x / d + 8.5)).
    private static func q4_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        let (max, _) = signedMaximum(x)
        let d = max / -8
        let id: Float = d != 0 ? 1 / d : 0
        storeHalf(d, y)
        let qs = (y + 2).assumingMemoryBound(to: UInt8.self)
        for j in 0 ..< 16 {
            let low = Swift.min(15, truncated(x[j] * id + 8.5))
            let high = Swift.min(15, truncated(x[j + 16] * id + 8.5))
            qs[j] = UInt8(truncatingIfNeeded: low) | UInt8(truncatingIfNeeded: high) << 4
        }
    }

    /// d = (max − min) / 15, m = min, q = min(15, trunc((x − m) / d + ½)).
    private static func q4_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        let (low, id) = offsetGrid(x, levels: 15, y)
        let qs = (y + 4).assumingMemoryBound(to: UInt8.self)
        for j in 0 ..< 16 {
            let a = Swift.min(15, truncated((x[j] - low) * id + 0.5))
            let b = Swift.min(15, truncated((x[j + 16] - low) * id + 0.5))
            qs[j] = UInt8(truncatingIfNeeded: a) | UInt8(truncatingIfNeeded: b) << 4
        }
    }

    /// d = max / −16, q = min(31, trunc(x / d + 16.5)); fifth bits in a u32.
    private static func q5_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        let (max, _) = signedMaximum(x)
        let d = max / -16
        let id: Float = d != 0 ? 1 / d : 0
        storeHalf(d, y)
        var qh: UInt32 = 0
        let qs = (y + 6).assumingMemoryBound(to: UInt8.self)
        for j in 0 ..< 16 {
            let a = UInt32(Swift.min(31, truncated(x[j] * id + 16.5)))
            let b = UInt32(Swift.min(31, truncated(x[j + 16] * id + 16.5)))
            qs[j] = UInt8(a & 0x0F) | UInt8(b & 0x0F) << 4
            qh |= (a >> 4) << UInt32(j)
            qh |= (b >> 4) << UInt32(j + 16)
        }
        (y + 2).storeBytes(of: qh.littleEndian, as: UInt32.self)
    }

    /// d = (max − min) / 31, m = min, q = trunc((x − m) / d + ½); fifth bits in a u32.
    private static func q5_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        let (low, id) = offsetGrid(x, levels: 31, y)
        var qh: UInt32 = 0
        let qs = (y + 8).assumingMemoryBound(to: UInt8.self)
        for j in 0 ..< 16 {
            let a = UInt32(truncatingIfNeeded: truncated((x[j] - low) * id + 0.5)) & 0xFF
            let b = UInt32(truncatingIfNeeded: truncated((x[j + 16] - low) * id + 0.5)) & 0xFF
            qs[j] = UInt8(a & 0x0F) | UInt8(b & 0x0F) << 4
            qh |= ((a & 0x10) >> 4) << UInt32(j)
            qh |= ((b & 0x10) >> 4) << UInt32(j + 16)
        }
        (y + 4).storeBytes(of: qh.littleEndian, as: UInt32.self)
    }
}

extension GGMLQuantize {
    /// The GGUF block type that holds a packed weight's values exactly, without rounding again,
    /// when there is one: 32-wide groups in original column order, f16 scales, and
    /// - 8-bit symmetric codes → Q8_0, 4-bit → Q4_0, 5-bit → Q5_0 (value = d·(code − 2^(b−1)));
    /// - 4- or 5-bit codes with a float offset (value = d·code + m) → Q4_1 / Q5_1, or with
    ///   integer zero points (m = −d·z, stored in f16).
    package static func exactType(for packed: PackedWeight) -> DType? {
        guard packed.granularity == .group(32), packed.columns % 32 == 0, packed.groupIndex == nil,
            packed.codeFormat == .integer, packed.scaleType == .f16
        else { return nil }
        switch (packed.bits, packed.zero) {
        case (8, .constant(128)): return .q8_0
        case (4, .constant(8)): return .q4_0
        case (5, .constant(16)): return .q5_0
        case (4, .offset): return .q4_1
        case (5, .offset): return .q5_1
        case (4, .perGroup), (5, .perGroup):
            // The codes and scales go in unchanged; the offset m = −scale·zero is stored in f16,
            // which may round it (by at most half an f16 step of m).
            return packed.bits == 4 ? .q4_1 : .q5_1
        default: return nil
        }
    }

    /// The packed weight's codes as GGUF blocks of `type` (which `exactType` chose for it).
    package static func blocks(of packed: PackedWeight, as type: DType) -> [UInt8] {
        let blocksPerRow = packed.columns / 32
        let bytes = type.bytesPerBlock
        var out = [UInt8](repeating: 0, count: packed.rows * blocksPerRow * bytes)
        var codes = [UInt8](repeating: 0, count: 32)
        packed.codes.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBytes { raw in
                for row in 0 ..< packed.rows {
                    let rowCodes = source.baseAddress! + row * packed.rowBytes
                    for block in 0 ..< blocksPerRow {
                        for j in 0 ..< 32 {
                            codes[j] = PackedWeight.code(rowCodes, column: block * 32 + j, bits: packed.bits, rowBytes: packed.rowBytes)
                        }
                        let index = row * blocksPerRow + block
                        let scale = packed.scales[index]
                        let y = raw.baseAddress! + index * bytes
                        storeHalf(scale, y)
                        var offset: Float?
                        switch packed.zero {
                        case .offset(let offsets): offset = offsets[index]
                        case .perGroup(let zeros): offset = -scale * zeros[index]
                        case .constant: offset = nil
                        }
                        switch type {
                        case .q8_0:
                            for j in 0 ..< 32 { (y + 2 + j).storeBytes(of: Int8(Int(codes[j]) - 128), as: Int8.self) }
                        case .q4_0, .q4_1:
                            let start = type == .q4_0 ? 2 : 4
                            if let offset { storeHalf(offset, y + 2) }
                            for j in 0 ..< 16 { (y + start + j).storeBytes(of: codes[j] | codes[j + 16] << 4, as: UInt8.self) }
                        case .q5_0, .q5_1:
                            let (qhAt, start) = type == .q5_0 ? (2, 6) : (4, 8)
                            if let offset { storeHalf(offset, y + 2) }
                            var qh: UInt32 = 0
                            for j in 0 ..< 16 {
                                (y + start + j).storeBytes(of: (codes[j] & 0x0F) | (codes[j + 16] & 0x0F) << 4, as: UInt8.self)
                                qh |= UInt32(codes[j] >> 4) << UInt32(j) | UInt32(codes[j + 16] >> 4) << UInt32(j + 16)
                            }
                            (y + qhAt).storeBytes(of: qh.littleEndian, as: UInt32.self)
                        default:
                            preconditionFailure("GGMLQuantize.blocks: \(type.rawValue)")
                        }
                    }
                }
            }
        }
        return out
    }
}
