import Foundation

/// The tensors GPTQ (AutoGPTQ's v1 "gptq" layout) and compressed-tensors checkpoints store for a
/// quantized linear layer, made from a `PackedWeight` and read back into one, without rounding:
/// the codes, scales and zero points are the same numbers in another arrangement.
package enum QuantizedLayouts {
    /// Codes as a little-endian bitstream of `bits`-bit values packed into 32-bit words, value
    /// `i` at bit `i · bits` of the stream: GPTQ's packing for 2, 3, 4 and 8 bits (its 3-bit
    /// layout, 32 values in 3 words, is this stream).
    static func packStream(_ values: [UInt32], bits: Int) -> [UInt32] {
        let words = (values.count * bits + 31) / 32
        var out = [UInt32](repeating: 0, count: words)
        for (i, value) in values.enumerated() {
            let bit = i * bits
            let word = bit >> 5
            let shift = UInt32(bit & 31)
            out[word] |= value << shift
            if Int(shift) + bits > 32 { out[word + 1] |= value >> (32 - shift) }
        }
        return out
    }

    static func unpackStream(_ words: [UInt32], bits: Int, count: Int) -> [UInt32] {
        let mask = UInt32((1 << bits) - 1)
        return (0 ..< count).map { i in
            let bit = i * bits
            let word = bit >> 5
            let shift = UInt32(bit & 31)
            var value = words[word] >> shift
            if Int(shift) + bits > 32 { value |= words[word + 1] << (32 - shift) }
            return value & mask
        }
    }

    /// All codes of a packed weight, row-major.
    static func codes(_ packed: PackedWeight) -> [UInt32] {
        var out = [UInt32](repeating: 0, count: packed.rows * packed.columns)
        packed.codes.withUnsafeBufferPointer { source in
            for row in 0 ..< packed.rows {
                let base = source.baseAddress! + row * packed.rowBytes
                for column in 0 ..< packed.columns {
                    out[row * packed.columns + column] = UInt32(PackedWeight.code(base, column: column, bits: packed.bits, rowBytes: packed.rowBytes))
                }
            }
        }
        return out
    }

    /// The zero point of every (row, group), as whole numbers; nil for a float offset.
    static func zeros(_ packed: PackedWeight) -> [Float]? {
        switch packed.zero {
        case .constant(let z): return [Float](repeating: z, count: packed.scaleCount)
        case .perGroup(let zeros): return zeros
        case .offset: return nil
        }
    }

    /// Each column's group (`g_idx`).
    static func groupIndex(_ packed: PackedWeight) -> [Int32] {
        packed.groupIndex ?? naturalGroupIndex(columns: packed.columns, packed.granularity)
    }

    /// The group of each column in order: `column / size` for groups, 0 otherwise.
    static func naturalGroupIndex(columns: Int, _ granularity: PackedWeight.Granularity) -> [Int32] {
        (0 ..< columns).map { column in
            if case .group(let size) = granularity { return Int32(column / size) }
            return 0
        }
    }

    /// Scales per (row, group), expanded from one per tensor to one per row where needed.
    static func scaleMatrix(_ packed: PackedWeight) -> (groups: Int, scales: [Float]) {
        if packed.granularity == .tensor { return (1, [Float](repeating: packed.scales[0], count: packed.rows)) }
        return (packed.groupsPerRow, packed.scales)
    }
}

// MARK: GPTQ

extension QuantizedLayouts {
    /// What stops a packed weight from being written in GPTQ's v1 layout, if anything.
    package static func gptqProblem(_ packed: PackedWeight) -> String? {
        guard packed.codeFormat == .integer else { return "float8 codes have no GPTQ layout" }
        guard [2, 3, 4, 8].contains(packed.bits) else { return "GPTQ stores 2, 3, 4 or 8 bits, not \(packed.bits)" }
        guard packed.columns * packed.bits % 32 == 0, packed.rows * packed.bits % 32 == 0 else {
            return "GPTQ packs \(packed.bits)-bit codes in 32-bit words: the \(packed.rows)×\(packed.columns) shape does not fill them"
        }
        guard let zeros = zeros(packed) else { return "a float offset per group (value = scale·code + m) has no GPTQ layout" }
        if case .perGroup = packed.zero, zeros.contains(0) {
            return "a zero point of 0, which GPTQ's v1 layout (storing zero − 1) cannot hold"
        }
        guard packed.scales.allSatisfy({ PackedWeight.exact($0, in: .f16) }) else { return "its scales are not exact in f16, which GPTQ stores" }
        return nil
    }

    /// GPTQ's tensors for a packed weight: `qweight` int32 [in·bits/32, out], `qzeros` int32
    /// [groups, out·bits/32] holding zero − 1, `scales` f16 [groups, out], `g_idx` int32 [in].
    package static func gptqTensors(_ packed: PackedWeight, module: String) throws -> [TensorToWrite] {
        if let problem = gptqProblem(packed) { throw EngineError(subject: module, "cannot be written as GPTQ: \(problem)") }
        let rows = packed.rows, columns = packed.columns, bits = packed.bits
        let allCodes = codes(packed)
        let (groups, scales) = scaleMatrix(packed)
        let zeroValues = zeros(packed)!
        let expandedZeros = packed.granularity == .tensor ? [Float](repeating: zeroValues[0], count: rows) : zeroValues
        let wordsPerColumn = columns * bits / 32
        var qweight = [UInt32](repeating: 0, count: wordsPerColumn * rows)
        for row in 0 ..< rows {
            let stream = packStream(Array(allCodes[row * columns ..< (row + 1) * columns]), bits: bits)
            for (k, word) in stream.enumerated() { qweight[k * rows + row] = word }
        }
        let zeroWords = rows * bits / 32
        var qzeros = [UInt32](repeating: 0, count: groups * zeroWords)
        var scaleHalves = [UInt16](repeating: 0, count: groups * rows)
        let mask = UInt32((1 << bits) - 1)
        for group in 0 ..< groups {
            let stored = (0 ..< rows).map { (UInt32(expandedZeros[$0 * groups + group]) &- 1) & mask }
            let stream = packStream(stored, bits: bits)
            for (k, word) in stream.enumerated() { qzeros[group * zeroWords + k] = word }
            for row in 0 ..< rows { scaleHalves[group * rows + row] = HalfConversion.floatToF16(scales[row * groups + group]) }
        }
        let gIdx = groupIndex(packed)
        return [
            try words(module + ".qweight", qweight, shape: [wordsPerColumn, rows]),
            try words(module + ".qzeros", qzeros, shape: [groups, zeroWords]),
            try TensorToWrite(name: module + ".scales", dtype: .f16, shape: [groups, rows]) { buffer in
                scaleHalves.withUnsafeBytes { buffer.copyMemory(from: $0) }
            },
            try TensorToWrite(name: module + ".g_idx", dtype: .i32, shape: [columns]) { buffer in
                gIdx.withUnsafeBytes { buffer.copyMemory(from: $0) }
            },
        ]
    }

    static func words(_ name: String, _ values: [UInt32], shape: [Int], dtype: DType = .i32) throws -> TensorToWrite {
        try TensorToWrite(name: name, dtype: dtype, shape: shape) { buffer in values.withUnsafeBytes { buffer.copyMemory(from: $0) } }
    }

    /// Reads GPTQ's tensors back: `zeroOffset` is 1 for the v1 layout (it stores zero − 1), 0 for v2.
    package static func gptqWeight(
        qweight: StoredTensor, qzeros: StoredTensor, scales: StoredTensor, gIdx: StoredTensor?, bits: Int, groupSize: Int,
        symmetric: Bool, zeroOffset: Int
    ) throws -> PackedWeight {
        let name = qweight.name
        func fail(_ message: String) -> EngineError { EngineError(path: qweight.file.path, subject: name, message) }
        guard [2, 3, 4, 8].contains(bits) else { throw fail("GPTQ bits are 2, 3, 4 or 8; the config says \(bits)") }
        guard qweight.dtype == .i32, qweight.shape.count == 2 else { throw fail("expected an int32 matrix, got \(qweight.dtype.rawValue) \(qweight.shape)") }
        let rows = qweight.shape[1]
        let columns = qweight.shape[0] * 32 / bits
        guard rows > 0, columns > 0, rows * bits % 32 == 0 else { throw fail("shape \(qweight.shape) does not hold \(bits)-bit codes") }
        guard scales.shape.count == 2, scales.shape[1] == rows, [.f16, .bf16, .f32].contains(scales.dtype) else {
            throw EngineError(path: scales.file.path, subject: scales.name, "expected float scales [groups, \(rows)], got \(scales.dtype.rawValue) \(scales.shape)")
        }
        let groups = scales.shape[0]
        guard qzeros.dtype == .i32, qzeros.shape == [groups, rows * bits / 32] else {
            throw EngineError(path: qzeros.file.path, subject: qzeros.name, "expected int32 [\(groups), \(rows * bits / 32)], got \(qzeros.dtype.rawValue) \(qzeros.shape)")
        }
        let granularity: PackedWeight.Granularity
        if groupSize <= 0 {
            guard groups == 1 else { throw fail("group_size \(groupSize) means one group, but scales have \(groups)") }
            granularity = .channel
        } else {
            guard groups == (columns + groupSize - 1) / groupSize else {
                throw fail("\(columns) inputs in groups of \(groupSize) make \((columns + groupSize - 1) / groupSize) groups; scales have \(groups)")
            }
            granularity = .group(groupSize)
        }
        let qw = try int32Values(qweight)
        var codes = [UInt8](repeating: 0, count: rows * columns)
        let wordsPerColumn = qweight.shape[0]
        for row in 0 ..< rows {
            let stream = (0 ..< wordsPerColumn).map { qw[$0 * rows + row] }
            for (column, code) in unpackStream(stream, bits: bits, count: columns).enumerated() { codes[row * columns + column] = UInt8(code) }
        }
        let qz = try int32Values(qzeros)
        let scaleValues = try Dequantize.floats(scales)
        var rowScales = [Float](repeating: 0, count: rows * groups)
        var rowZeros = [Float](repeating: 0, count: rows * groups)
        let zeroWords = rows * bits / 32
        for group in 0 ..< groups {
            let stored = unpackStream(Array(qz[group * zeroWords ..< (group + 1) * zeroWords]), bits: bits, count: rows)
            for row in 0 ..< rows {
                rowScales[row * groups + group] = scaleValues[group * rows + row]
                let zero = Int(stored[row]) + zeroOffset
                guard zero < 1 << bits else {
                    throw EngineError(path: qzeros.file.path, subject: qzeros.name, "zero point \(zero) of row \(row), group \(group) is outside the \(bits)-bit range (a v1 checkpoint's stored zero − 1 wrapped)")
                }
                rowZeros[row * groups + group] = Float(zero)
            }
        }
        var groupIndex: [Int32]?
        if let gIdx {
            guard gIdx.shape == [columns], [.i32, .i64].contains(gIdx.dtype) else {
                throw EngineError(path: gIdx.file.path, subject: gIdx.name, "expected int32 [\(columns)], got \(gIdx.dtype.rawValue) \(gIdx.shape)")
            }
            let values = try Dequantize.floats(gIdx).map { Int32($0) }
            if values != naturalGroupIndex(columns: columns, granularity) { groupIndex = values }
        }
        let middle = Float(1 << (bits - 1))
        let zero: PackedWeight.ZeroPoint = symmetric && rowZeros.allSatisfy({ $0 == middle }) ? .constant(middle) : .perGroup(rowZeros)
        return try PackedWeight(
            rows: rows, columns: columns, bits: bits, granularity: granularity,
            codes: PackedWeight.pack(codes, rows: rows, columns: columns, bits: bits), scales: rowScales,
            scaleType: scales.dtype, zero: zero, groupIndex: groupIndex)
    }

    static func int32Values(_ tensor: StoredTensor) throws -> [UInt32] {
        guard tensor.dtype == .i32 else { throw EngineError(path: tensor.file.path, subject: tensor.name, "expected int32, got \(tensor.dtype.rawValue)") }
        return tensor.withBytes { raw in (0 ..< tensor.count).map { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)) } }
    }
}

// MARK: compressed-tensors

extension QuantizedLayouts {
    /// How compressed-tensors names one quantized weight's scheme (`config_groups` entry).
    package struct CompressedScheme: Hashable, Sendable {
        package var bits: Int
        package var type: String  // "int" or "float"
        package var symmetric: Bool
        package var strategy: String  // "tensor", "channel", "group"
        package var groupSize: Int?
        package var actorder: Bool

        package init(_ packed: PackedWeight) {
            bits = packed.bits
            type = packed.codeFormat == .e4m3 ? "float" : "int"
            if case .constant = packed.zero { symmetric = true } else { symmetric = false }
            switch packed.granularity {
            case .tensor: strategy = "tensor"; groupSize = nil
            case .channel: strategy = "channel"; groupSize = nil
            case .group(let size): strategy = "group"; groupSize = size
            }
            actorder = packed.groupIndex != nil
        }

        /// The format that stores it: float8 as `float-quantized`, integer weights packed (8-bit
        /// weight-only too, as llm-compressor writes W8A16; `int-quantized` is read).
        package var format: String { type == "float" ? "float-quantized" : "pack-quantized" }

        package var json: StrictJSON {
            var members: [StrictJSON.Member] = [
                StrictJSON.Member("num_bits", .integer(bits)), StrictJSON.Member("type", .string(type)),
                StrictJSON.Member("symmetric", .bool(symmetric)), StrictJSON.Member("strategy", .string(strategy)),
                StrictJSON.Member("group_size", groupSize.map { .integer($0) } ?? .null),
                StrictJSON.Member("dynamic", .bool(false)), StrictJSON.Member("observer", .string("minmax")),
            ]
            if actorder { members.append(StrictJSON.Member("actorder", .string("group"))) }
            return .object(members)
        }
    }

    /// What stops a packed weight from being written as compressed-tensors, if anything.
    package static func compressedProblem(_ packed: PackedWeight) -> String? {
        if case .offset = packed.zero { return "a float offset per group (value = scale·code + m) has no compressed-tensors layout" }
        if case .constant(let z) = packed.zero, packed.codeFormat == .integer, z != Float(1 << (packed.bits - 1)) {
            return "a symmetric grid centred on \(z), not on 2^(bits−1)"
        }
        return nil
    }

    /// compressed-tensors' tensors for a packed weight, in `format` (`pack-quantized`:
    /// `weight_packed` int32 [out, ⌈in / ⌊32/bits⌋⌉]; `int-quantized`: `weight` int8; `float-quantized`:
    /// `weight` F8_E4M3), with `weight_scale` [out, groups] in the scales' type,
    /// `weight_zero_point` for asymmetric grids (packed along the output dimension when packed),
    /// `weight_g_idx` after act-order and `weight_shape`.
    package static func compressedTensors(_ packed: PackedWeight, module: String, format: String) throws -> [TensorToWrite] {
        if let problem = compressedProblem(packed) { throw EngineError(subject: module, "cannot be written as compressed-tensors: \(problem)") }
        let rows = packed.rows, columns = packed.columns, bits = packed.bits
        let allCodes = codes(packed)
        var out: [TensorToWrite] = []
        let middle = UInt32(1 << (bits - 1))
        switch format {
        case "pack-quantized":
            let perRow = (columns * bits + 31) / 32
            var words = [UInt32](repeating: 0, count: rows * perRow)
            for row in 0 ..< rows {
                let packedRow = packStream(Array(allCodes[row * columns ..< (row + 1) * columns]), bits: bits)
                for (k, word) in packedRow.enumerated() { words[row * perRow + k] = word }
            }
            out.append(try Self.words(module + ".weight_packed", words, shape: [rows, perRow]))
        case "int-quantized":
            let signed = allCodes.map { Int8(truncatingIfNeeded: Int($0) - Int(middle)) }
            out.append(try TensorToWrite(name: module + ".weight", dtype: .i8, shape: [rows, columns]) { buffer in
                signed.withUnsafeBytes { buffer.copyMemory(from: $0) }
            })
        case "float-quantized":
            let bytes = allCodes.map { UInt8($0) }
            out.append(try TensorToWrite(name: module + ".weight", dtype: .f8_e4m3, shape: [rows, columns]) { buffer in
                bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
            })
        default:
            throw EngineError(subject: module, "unknown compressed-tensors format '\(format)'")
        }
        let groups = packed.granularity == .tensor ? 1 : packed.groupsPerRow
        let scaleShape = packed.granularity == .tensor ? [1] : [rows, groups]
        // In f32, as llm-compressor writes them for an f32 model: every f16 or bf16 scale is
        // exact in it, and the library multiplies in the scale's type.
        let scaleType = DType.f32
        let scales = packed.scales
        out.append(try TensorToWrite(name: module + ".weight_scale", dtype: scaleType, shape: scaleShape) { buffer in
            try Converter.encode(scales, as: scaleType, into: buffer)
        })
        if case .perGroup(let zeros) = packed.zero {
            if format == "pack-quantized" {
                // Packed along dim 0 (rows): the [rows, groups] matrix transposed, each group's column packed.
                let perColumn = (rows * bits + 31) / 32
                var words = [UInt32](repeating: 0, count: perColumn * groups)
                for group in 0 ..< groups {
                    let column = (0 ..< rows).map { UInt32(zeros[$0 * groups + group]) }
                    for (k, word) in packStream(column, bits: bits).enumerated() { words[k * groups + group] = word }
                }
                out.append(try Self.words(module + ".weight_zero_point", words, shape: [perColumn, groups]))
            } else {
                let signed = zeros.map { Int8(truncatingIfNeeded: Int($0) - Int(middle)) }
                out.append(try TensorToWrite(name: module + ".weight_zero_point", dtype: .i8, shape: scaleShape) { buffer in
                    signed.withUnsafeBytes { buffer.copyMemory(from: $0) }
                })
            }
        }
        if packed.groupIndex != nil {
            let gIdx = groupIndex(packed)
            out.append(try TensorToWrite(name: module + ".weight_g_idx", dtype: .i32, shape: [columns]) { buffer in
                gIdx.withUnsafeBytes { buffer.copyMemory(from: $0) }
            })
        }
        if format == "pack-quantized" {
            let shape = [Int64(rows), Int64(columns)]
            out.append(try TensorToWrite(name: module + ".weight_shape", dtype: .i64, shape: [2]) { buffer in
                shape.withUnsafeBytes { buffer.copyMemory(from: $0) }
            })
        }
        return out
    }

    /// Reads a compressed-tensors quantized weight back. `tensors` finds a tensor by name.
    package static func compressedWeight(
        module: String, scheme: CompressedScheme, format: String, tensor: (String) -> StoredTensor?
    ) throws -> PackedWeight {
        guard let scaleTensor = tensor(module + ".weight_scale") else { throw EngineError(subject: module + ".weight_scale", "tensor is missing") }
        let bits = scheme.bits
        guard (1 ... 8).contains(bits) else { throw EngineError(subject: module, "num_bits \(bits) is outside 1–8") }
        let middle = 1 << (bits - 1)
        var rows = 0, columns = 0
        var codes: [UInt8] = []
        var codeFormat = PackedWeight.CodeFormat.integer
        if let packedTensor = tensor(module + ".weight_packed") {
            guard let shapeTensor = tensor(module + ".weight_shape") else { throw EngineError(subject: module + ".weight_shape", "tensor is missing") }
            let shape = try Dequantize.floats(shapeTensor).map { Int($0) }
            guard shape.count == 2, shape[0] > 0, shape[1] > 0, shape[0] <= ModelConfig.maxSize, shape[1] <= ModelConfig.maxSize else {
                throw EngineError(path: shapeTensor.file.path, subject: shapeTensor.name, "expected [out, in], got \(shape)")
            }
            (rows, columns) = (shape[0], shape[1])
            let perRow = (columns * bits + 31) / 32
            guard packedTensor.shape == [rows, perRow] else {
                throw EngineError(path: packedTensor.file.path, subject: packedTensor.name, "expected int32 [\(rows), \(perRow)] for \(bits)-bit codes of \(shape), got \(packedTensor.shape)")
            }
            let words = try int32Values(packedTensor)
            codes.reserveCapacity(rows * columns)
            for row in 0 ..< rows {
                codes += unpackStream(Array(words[row * perRow ..< (row + 1) * perRow]), bits: bits, count: columns).map { UInt8($0) }
            }
        } else if let weight = tensor(module + ".weight"), weight.shape.count == 2 {
            (rows, columns) = (weight.shape[0], weight.shape[1])
            switch weight.dtype {
            case .i8 where bits == 8:
                codes = weight.withBytes { raw in (0 ..< weight.count).map { UInt8(truncatingIfNeeded: Int(Int8(bitPattern: raw[$0])) + middle) } }
            case .f8_e4m3 where scheme.type == "float":
                codes = weight.withBytes { Array($0.prefix(weight.count)) }
                codeFormat = .e4m3
            default:
                throw EngineError(path: weight.file.path, subject: weight.name, "\(weight.dtype.rawValue) does not hold a \(scheme.type) \(bits)-bit weight")
            }
        } else {
            throw EngineError(subject: module + ".weight_packed", "tensor is missing (a quantized layer stores weight_packed or an int8/float8 weight)")
        }
        let granularity: PackedWeight.Granularity
        switch scheme.strategy {
        case "tensor": granularity = .tensor
        case "channel": granularity = .channel
        case "group":
            guard let size = scheme.groupSize, size > 0 else { throw EngineError(subject: module, "a group strategy needs a positive group_size") }
            granularity = .group(size)
        default: throw EngineError(subject: module, "strategy '\(scheme.strategy)' is not supported (tensor, channel, group)")
        }
        let groups: Int
        switch granularity {
        case .tensor: groups = 1
        case .channel: groups = 1
        case .group(let size): groups = (columns + size - 1) / size
        }
        let scaleCount = granularity == .tensor ? 1 : rows * groups
        guard scaleTensor.count == scaleCount else {
            throw EngineError(path: scaleTensor.file.path, subject: scaleTensor.name, "expected \(scaleCount) scales for \(scheme.strategy) \(rows)×\(columns), got shape \(scaleTensor.shape)")
        }
        let scales = try Dequantize.floats(scaleTensor)
        // Scales stored wider than they need are counted at the narrowest type that holds them.
        let scaleType: DType = [DType.f16, .bf16, .f32].first { type in scales.allSatisfy { PackedWeight.exact($0, in: type) } }!
        var zero = PackedWeight.ZeroPoint.constant(codeFormat == .e4m3 ? 0 : Float(middle))
        if let zeroTensor = tensor(module + ".weight_zero_point") {
            var zeros: [Float]
            if zeroTensor.dtype == .i32 && tensor(module + ".weight_packed") != nil {
                let perColumn = (rows * bits + 31) / 32
                guard zeroTensor.shape == [perColumn, groups] else {
                    throw EngineError(path: zeroTensor.file.path, subject: zeroTensor.name, "expected int32 [\(perColumn), \(groups)], got \(zeroTensor.shape)")
                }
                let words = try int32Values(zeroTensor)
                zeros = [Float](repeating: 0, count: rows * groups)
                for group in 0 ..< groups {
                    let column = (0 ..< perColumn).map { words[$0 * groups + group] }
                    for (row, value) in unpackStream(column, bits: bits, count: rows).enumerated() { zeros[row * groups + group] = Float(value) }
                }
            } else {
                guard zeroTensor.count == scaleCount else {
                    throw EngineError(path: zeroTensor.file.path, subject: zeroTensor.name, "expected \(scaleCount) zero points, got shape \(zeroTensor.shape)")
                }
                zeros = try Dequantize.floats(zeroTensor).map { $0 + Float(middle) }
            }
            if !scheme.symmetric || zeros.contains(where: { $0 != Float(middle) }) { zero = .perGroup(zeros) }
        }
        var groupIndex: [Int32]?
        if let gIdx = tensor(module + ".weight_g_idx") {
            guard gIdx.count == columns else { throw EngineError(path: gIdx.file.path, subject: gIdx.name, "expected \(columns) group indices, got \(gIdx.shape)") }
            let values = try Dequantize.floats(gIdx).map { Int32($0) }
            if values != naturalGroupIndex(columns: columns, granularity) { groupIndex = values }
        }
        return try PackedWeight(
            rows: rows, columns: columns, bits: bits, granularity: granularity,
            codes: PackedWeight.pack(codes, rows: rows, columns: columns, bits: bits), scales: scales,
            scaleType: scaleType, zero: zero, groupIndex: groupIndex, codeFormat: codeFormat)
    }
}
