import CQSKernels
import Foundation

/// A quantized linear weight, [rows = out, columns = in]: an integer code of `bits` bits per
/// element, and per group of input columns a scale and a zero point. It holds exactly what
/// GPTQ, compressed-tensors and GGUF's Q8_0/Q4_0/Q4_1 checkpoints store, so that writing one
/// needs no second rounding:
///
/// - `value = scale · (code − zero)` with one zero for every group (symmetric grids: zero is
///   2^(bits−1), as GPTQ and compressed-tensors store them), or a zero per group (asymmetric);
/// - `value = scale · code + offset` (GGUF Q4_1's `m`, mlx's biases).
///
/// Codes are packed row by row, lowest bits first, each row starting on a byte boundary.
package struct PackedWeight: Sendable, Equatable {
    /// Which elements share a scale.
    package enum Granularity: Sendable, Equatable, Hashable {
        /// One scale for the whole tensor.
        case tensor
        /// One scale per output row.
        case channel
        /// One scale per `size` consecutive input columns of a row; the last group of a row is
        /// shorter when `size` does not divide the row.
        case group(Int)
    }

    /// How a code becomes a value, with its scale.
    package enum ZeroPoint: Sendable, Equatable {
        /// scale · (code − zero), the same zero for every group.
        case constant(Float)
        /// scale · (code − zeros[group]); zeros are whole numbers in the code range.
        case perGroup([Float])
        /// scale · code + offsets[group].
        case offset([Float])
    }

    /// What a code is before its scale: an integer, or (8-bit codes) a float8 e4m3 number.
    package enum CodeFormat: Sendable, Equatable {
        case integer
        /// Float8 e4m3 ("fn": 4 exponent bits, bias 7, 3 mantissa bits, no infinities, largest
        /// 448), as FP8 checkpoints store their weights.
        case e4m3
    }

    package let rows: Int
    package let columns: Int
    package let bits: Int
    package let codeFormat: CodeFormat
    package let granularity: Granularity
    /// The codes, `rowBytes` bytes a row.
    package let codes: [UInt8]
    /// One scale per group, row-major over [rows, groupsPerRow] (one in all for `.tensor`).
    package let scales: [Float]
    /// The type the scales (and float offsets) are stored in; every scale is exact in it.
    package let scaleType: DType
    package let zero: ZeroPoint
    /// The group of each input column when it is not `column / size`: GPTQ's `g_idx` after
    /// act-order, which quantizes columns in another order but stores codes in the original one.
    package let groupIndex: [Int32]?

    /// Bytes of codes per row.
    package var rowBytes: Int { (columns * bits + 7) / 8 }

    /// Groups per row (1 for `.tensor` and `.channel`).
    package var groupsPerRow: Int {
        if case .group(let size) = granularity { return (columns + size - 1) / size }
        return 1
    }

    /// The number of scales (and zero points).
    package var scaleCount: Int {
        switch granularity {
        case .tensor: 1
        case .channel: rows
        case .group: rows * groupsPerRow
        }
    }

    /// Checks every count against the shape. Throws naming what does not fit.
    package init(
        rows: Int, columns: Int, bits: Int, granularity: Granularity, codes: [UInt8], scales: [Float],
        scaleType: DType = .f16, zero: ZeroPoint, groupIndex: [Int32]? = nil, codeFormat: CodeFormat = .integer
    ) throws {
        guard rows > 0, columns > 0 else { throw EngineError("a packed weight needs a positive shape, got [\(rows), \(columns)]") }
        guard (1 ... 8).contains(bits) else { throw EngineError("packed codes have 1 to 8 bits, got \(bits)") }
        guard [.f16, .bf16, .f32].contains(scaleType) else { throw EngineError("scales are f16, bf16 or f32, got \(scaleType.rawValue)") }
        self.rows = rows
        self.columns = columns
        self.bits = bits
        self.granularity = granularity
        self.codes = codes
        self.scales = scales
        self.scaleType = scaleType
        self.zero = zero
        self.groupIndex = groupIndex
        self.codeFormat = codeFormat
        if codeFormat == .e4m3 {
            guard bits == 8, zero == .constant(0) else { throw EngineError("float8 codes are 8 bits with no zero point") }
            guard !codes.contains(where: { $0 & 0x7F == 0x7F }) else { throw EngineError("a float8 e4m3 code is NaN") }
        }
        if case .group(let size) = granularity, size <= 0 { throw EngineError("group size must be positive, got \(size)") }
        guard codes.count == rows * rowBytes else {
            throw EngineError("\(rows)×\(columns) codes of \(bits) bits take \(rows * rowBytes) bytes, got \(codes.count)")
        }
        guard scales.count == scaleCount else { throw EngineError("expected \(scaleCount) scales, got \(scales.count)") }
        guard scales.allSatisfy({ $0.isFinite && Self.exact($0, in: scaleType) }) else {
            throw EngineError("every scale must be finite and exact in \(scaleType.rawValue)")
        }
        switch zero {
        case .constant(let z):
            guard z.isFinite else { throw EngineError("the zero point must be finite") }
        case .perGroup(let zeros):
            guard zeros.count == scaleCount else { throw EngineError("expected \(scaleCount) zero points, got \(zeros.count)") }
            let top = Float((1 << bits) - 1)
            guard zeros.allSatisfy({ $0 == $0.rounded() && $0 >= 0 && $0 <= top }) else {
                throw EngineError("zero points must be whole numbers from 0 to \(Int(top))")
            }
        case .offset(let offsets):
            guard offsets.count == scaleCount else { throw EngineError("expected \(scaleCount) offsets, got \(offsets.count)") }
            guard offsets.allSatisfy({ $0.isFinite && Self.exact($0, in: scaleType) }) else {
                throw EngineError("every offset must be finite and exact in \(scaleType.rawValue)")
            }
        }
        if let groupIndex {
            guard groupIndex.count == columns else { throw EngineError("expected a group index per column (\(columns)), got \(groupIndex.count)") }
            guard groupIndex.allSatisfy({ $0 >= 0 && Int($0) < groupsPerRow }) else {
                throw EngineError("group indices must lie in 0..<\(groupsPerRow)")
            }
        }
    }

    /// Packs one code per element (row-major, each below 2^bits) into rows of `bits`-bit codes.
    package static func pack(_ unpacked: [UInt8], rows: Int, columns: Int, bits: Int) -> [UInt8] {
        precondition(unpacked.count == rows * columns, "PackedWeight.pack: \(unpacked.count) codes for \(rows)×\(columns)")
        let rowBytes = (columns * bits + 7) / 8
        var packed = [UInt8](repeating: 0, count: rows * rowBytes)
        let mask = UInt16((1 << bits) - 1)
        for row in 0 ..< rows {
            for column in 0 ..< columns {
                let code = UInt16(unpacked[row * columns + column]) & mask
                let bit = column * bits
                let index = row * rowBytes + bit >> 3
                let shifted = code << UInt16(bit & 7)
                packed[index] |= UInt8(truncatingIfNeeded: shifted)
                if shifted > 0xFF { packed[index + 1] |= UInt8(truncatingIfNeeded: shifted >> 8) }
            }
        }
        return packed
    }

    /// The group of `column` in any row.
    @inline(__always)
    package func group(ofColumn column: Int) -> Int {
        if let groupIndex { return Int(groupIndex[column]) }
        if case .group(let size) = granularity { return column / size }
        return 0
    }

    /// The code of one element.
    package func code(row: Int, column: Int) -> Int {
        codes.withUnsafeBufferPointer { Int(Self.code($0.baseAddress! + row * rowBytes, column: column, bits: bits, rowBytes: rowBytes)) }
    }

    @inline(__always)
    static func code(_ row: UnsafePointer<UInt8>, column: Int, bits: Int, rowBytes: Int) -> UInt8 {
        let bit = column * bits
        let index = bit >> 3
        var word = UInt16(row[index])
        if index + 1 < rowBytes { word |= UInt16(row[index + 1]) << 8 }
        return UInt8(truncatingIfNeeded: (word >> UInt16(bit & 7)) & UInt16((1 << bits) - 1))
    }

    /// The index into `scales` of a row's group.
    @inline(__always)
    func scaleIndex(row: Int, group: Int) -> Int {
        switch granularity {
        case .tensor: 0
        case .channel: row
        case .group: row * groupsPerRow + group
        }
    }

    /// Bytes as stored: the codes, the scales and float offsets in `scaleType`, integer zero
    /// points packed at `bits` bits (as GPTQ and compressed-tensors store them), and the group
    /// index as int32 when there is one.
    package var byteCount: Int {
        let scaleBytes = scaleCount * scaleType.bytesPerBlock
        let zeroBytes: Int
        switch zero {
        case .constant: zeroBytes = 0
        case .perGroup: zeroBytes = (scaleCount * bits + 7) / 8
        case .offset: zeroBytes = scaleBytes
        }
        return codes.count + scaleBytes + zeroBytes + (groupIndex?.count ?? 0) * 4
    }

    /// The C view of the codes, scales and zero terms (`qs_packed_matrix`), for `body`; nil for
    /// float codes, a tensor-wide scale or a group index.
    package func withMatrix<R>(_ body: (inout qs_packed_matrix) throws -> R) rethrows -> R? {
        guard codeFormat == .integer, groupIndex == nil, scales.count == scaleCount else { return nil }
        let group: Int
        switch granularity {
        case .tensor: return nil
        case .channel: group = columns
        case .group(let size): group = size
        }
        let kind: Int32, zeros: [Float], zero: Float
        switch self.zero {
        case .constant(let z): (kind, zeros, zero) = (0, [], z)
        case .perGroup(let z): (kind, zeros, zero) = (1, z, 0)
        case .offset(let o): (kind, zeros, zero) = (2, o, 0)
        }
        guard kind == 0 || zeros.count == scaleCount else { return nil }
        return try codes.withUnsafeBufferPointer { codes in
            try scales.withUnsafeBufferPointer { scales in
                try zeros.withUnsafeBufferPointer { zeros in
                    var m = qs_packed_matrix(
                        codes: codes.baseAddress, row_bytes: rowBytes, rows: rows, cols: columns, group: group,
                        groups_per_row: groupsPerRow, bits: Int32(bits), zero_kind: kind, scales: scales.baseAddress,
                        zeros: zeros.baseAddress, zero: zero)
                    return try body(&m)
                }
            }
        }
    }

    /// Writes rows `range` as fp32 into `destination` (`range.count × columns` values).
    package func dequantizeRows(_ range: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "PackedWeight: rows \(range) outside 0..<\(rows)")
        // 8-bit and (even-width) 4-bit integer codes in their natural order: the C loops, the same values.
        if withMatrix({ qs_dequantize_packed_rows(&$0, range.lowerBound, range.count, destination) }) == 0 { return }
        dequantizeRowsElementwise(range, into: destination)
    }

    /// `dequantizeRows` one element at a time: every code width, order and grid.
    func dequantizeRowsElementwise(_ range: Range<Int>, into destination: UnsafeMutablePointer<Float>) {
        let groupSize: Int
        switch granularity {
        case .tensor, .channel: groupSize = columns
        case .group(let size): groupSize = size
        }
        codes.withUnsafeBufferPointer { codeBuffer in
            scales.withUnsafeBufferPointer { scaleBuffer in
                for row in range {
                    let source = codeBuffer.baseAddress! + row * rowBytes
                    let out = destination + (row - range.lowerBound) * columns
                    if groupIndex == nil {
                        var first = 0
                        var group = 0
                        while first < columns {
                            let last = min(columns, first + groupSize)
                            let index = scaleIndex(row: row, group: group)
                            decode(source, first ..< last, scale: scaleBuffer[index], zeroIndex: index, into: out)
                            first = last
                            group += 1
                        }
                    } else {
                        for column in 0 ..< columns {
                            let index = scaleIndex(row: row, group: group(ofColumn: column))
                            decode(source, column ..< column + 1, scale: scaleBuffer[index], zeroIndex: index, into: out)
                        }
                    }
                }
            }
        }
    }

    /// Decodes columns `range` of one row that share a scale.
    @inline(__always)
    private func decode(
        _ row: UnsafePointer<UInt8>, _ range: Range<Int>, scale: Float, zeroIndex: Int, into out: UnsafeMutablePointer<Float>
    ) {
        let bits = bits
        let rowBytes = rowBytes
        if codeFormat == .e4m3 {
            for column in range { out[column] = scale * Float8.e4m3Values[Int(row[column])] }
            return
        }
        switch zero {
        case .constant(let z):
            for column in range { out[column] = scale * (Float(Self.code(row, column: column, bits: bits, rowBytes: rowBytes)) - z) }
        case .perGroup(let zeros):
            let z = zeros[zeroIndex]
            for column in range { out[column] = scale * (Float(Self.code(row, column: column, bits: bits, rowBytes: rowBytes)) - z) }
        case .offset(let offsets):
            let m = offsets[zeroIndex]
            for column in range { out[column] = scale * Float(Self.code(row, column: column, bits: bits, rowBytes: rowBytes)) + m }
        }
    }

    /// Whether `value` is exactly representable in `type` (f16, bf16 or f32).
    static func exact(_ value: Float, in type: DType) -> Bool {
        switch type {
        case .f16: return HalfConversion.f16ToFloat(HalfConversion.floatToF16(value)) == value
        case .bf16: return HalfConversion.bf16ToFloat(HalfConversion.floatToBF16(value)) == value
        default: return true
        }
    }
}

/// Float8 e4m3 ("fn"): the 256 values of its codes, and rounding to the nearest (ties to an
/// even code), saturating at ±448.
package enum Float8 {
    /// The value of every code; the two NaN codes (0x7F, 0xFF) decode as NaN.
    package static let e4m3Values: [Float] = (0 ..< 256).map { code in
        let sign: Float = code & 0x80 != 0 ? -1 : 1
        let exponent = (code >> 3) & 0xF
        let mantissa = Float(code & 0x7)
        if exponent == 0xF && code & 0x7 == 0x7 { return .nan }
        if exponent == 0 { return sign * mantissa / 8 * Float(pow(2.0, -6.0)) }
        return sign * (1 + mantissa / 8) * Float(pow(2.0, Double(exponent - 7)))
    }

    /// The largest finite value, 448.
    package static let e4m3Max: Float = 448

    /// The code nearest `value` (ties to the even code), saturating at ±448; NaN has none.
    package static func e4m3Code(_ value: Float) -> UInt8 {
        let magnitude = min(abs(value), e4m3Max)
        // Positive codes 0 ..< 0x7F are increasing in value: binary search for the nearest.
        var low = 0
        var high = 0x7E
        while low < high {
            let middle = (low + high + 1) / 2
            if e4m3Values[middle] <= magnitude { low = middle } else { high = middle - 1 }
        }
        var code = low
        if code < 0x7E {
            let below = magnitude - e4m3Values[code]
            let above = e4m3Values[code + 1] - magnitude
            if above < below || (above == below && code & 1 == 1) { code += 1 }
        }
        return UInt8(code) | (value < 0 && code != 0 ? 0x80 : 0)
    }
}
