import Foundation
import QSTestSupport
import Testing
@testable import QSEngine

/// A weight computes the same in every form: stored tensors multiplied tile by tile, packed
/// codes, dense values.
@Suite struct WeightFormTests {
    static func inputs(rows: Int, cols: Int, seed: UInt64) -> Activations {
        var generator = TestGenerator(seed: seed)
        return Activations(rows: rows, cols: cols, data: generator.floats(rows * cols))
    }

    /// y = x · Wᵀ computed in double precision from the dense values: the reference.
    static func reference(_ x: Activations, _ values: [Float], out: Int, layout: WeightLayout) -> [Float] {
        var y = [Float](repeating: 0, count: x.rows * out)
        for r in 0 ..< x.rows {
            for o in 0 ..< out {
                var sum = 0.0
                for i in 0 ..< x.cols {
                    let w = layout == .outIn ? values[o * x.cols + i] : values[i * out + o]
                    sum += Double(x.data[r * x.cols + i]) * Double(w)
                }
                y[r * out + o] = Float(sum)
            }
        }
        return y
    }

    /// Every block type of the GGUF fixture (F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K,
    /// with the rotary rows of attn_q and attn_k permuted) multiplies from its stored bytes,
    /// converted in tiles of a few rows, exactly as its dense values do; the same holds through
    /// a conversion cache, and when the tensor is read as an in×out matrix.
    @Test func storedFormsMultiplyAsTheirDenseValues() throws {
        let tensors = try GGUFFile(path: GGUFFixtures.tinyPath).storedTensors().filter { $0.shape.count == 2 }
        #expect(tensors.count >= 9)
        #expect(tensors.contains { $0.rotaryPermutationHeads != nil })
        for tensor in tensors {
            for layout in [WeightLayout.outIn, .inOut] {
                let stored = Weight(stored: tensor, layout: layout)
                let values = try stored.floats()
                #expect(values == (try Dequantize.floats(tensor)), "\(tensor.name)")
                let dense = try Weight(dense: values, shape: tensor.shape, layout: layout)
                let x = Self.inputs(rows: 5, cols: stored.inFeatures, seed: 3)
                let expected = try WeightProduct.linear(x, dense, bias: nil, key: nil, conversions: nil)
                // Tiles of 64 elements: two or more rows at a time, many tiles per matrix.
                let tiled = try WeightProduct.linear(x, stored, bias: nil, key: nil, conversions: nil, tileElements: 64)
                let cache = ConversionCache(budgetBytes: 1 << 20)
                let cached = try WeightProduct.linear(
                    x, stored, bias: nil, key: .init(name: tensor.name, version: 0), conversions: cache)
                #expect(relativeError(tiled.data, expected.data) < 1e-6, "\(tensor.name) \(layout)")
                #expect(cached.data == expected.data, "\(tensor.name) \(layout)")
                #expect(cache.bytes == values.count * 4)
                let exact = Self.reference(x, values, out: stored.outFeatures, layout: layout)
                #expect(relativeError(expected.data, exact) < 1e-5, "\(tensor.name) \(layout)")
            }
        }
    }

    /// Rows of a stored table are gathered one at a time, as from its dense values.
    @Test func embeddingRowsGatherFromStoredBlocks() throws {
        let tensors = try GGUFFile(path: GGUFFixtures.tinyPath).storedTensors()
        let table = try #require(tensors.first { $0.name == "model.embed_tokens.weight" })
        #expect(table.dtype == .q8_0)
        let ids = [0, 63, 5, 5, 17]
        let gathered = try WeightProduct.gatherRows(Weight(stored: table), ids: ids, key: nil, conversions: nil)
        let values = try Dequantize.floats(table)
        let width = table.shape[1]
        #expect(gathered.data == ids.flatMap { Array(values[$0 * width ..< ($0 + 1) * width]) })
        #expect(throws: EngineError.self) { try WeightProduct.gatherRows(Weight(stored: table), ids: [64], key: nil, conversions: nil) }
    }

    /// A plain round-to-nearest quantizer for the tests: per group of `group` columns, min-max
    /// asymmetric or max-abs symmetric, scales rounded to fp16 first so that they are exact.
    static func quantize(
        _ values: [Float], rows: Int, columns: Int, bits: Int, group: Int, symmetric: Bool
    ) throws -> PackedWeight {
        let groups = (columns + group - 1) / group
        let top = Float((1 << bits) - 1)
        var codes = [UInt8](repeating: 0, count: rows * columns)
        var scales: [Float] = []
        var zeros: [Float] = []
        for r in 0 ..< rows {
            for g in 0 ..< groups {
                let slice = (g * group) ..< min(columns, (g + 1) * group)
                let part = slice.map { values[r * columns + $0] }
                let scale: Float
                let zero: Float
                if symmetric {
                    let half = Float(1 << (bits - 1))
                    scale = HalfConversion.f16ToFloat(HalfConversion.floatToF16(max(part.map(abs).max()!, 1e-8) / max(half - 1, 0.5)))
                    zero = half
                } else {
                    let low = min(part.min()!, 0)
                    let high = max(part.max()!, 0)
                    scale = HalfConversion.f16ToFloat(HalfConversion.floatToF16(max(high - low, 1e-8) / top))
                    zero = min(top, max(0, (-low / scale).rounded()))
                }
                scales.append(scale)
                zeros.append(zero)
                for c in slice {
                    codes[r * columns + c] = UInt8(min(top, max(0, (values[r * columns + c] / scale).rounded() + zero)))
                }
            }
        }
        return try PackedWeight(
            rows: rows, columns: columns, bits: bits, granularity: groups == 1 ? .channel : .group(group),
            codes: PackedWeight.pack(codes, rows: rows, columns: columns, bits: bits), scales: scales,
            zero: symmetric ? .constant(Float(1 << (bits - 1))) : .perGroup(zeros))
    }

    /// Packed codes of every width, with ragged last groups, decode to scale · (code − zero) and
    /// multiply as their dense values; the bytes count codes, fp16 scales and packed zeros.
    @Test(arguments: [1, 2, 3, 4, 5, 8])
    func packedWeightsDecodeAndMultiply(bits: Int) throws {
        let rows = 12
        let columns = 40
        var generator = TestGenerator(seed: UInt64(bits))
        let values = generator.floats(rows * columns)
        for (group, symmetric) in [(16, false), (40, false), (16, true), (7, true)] {
            let packed = try Self.quantize(values, rows: rows, columns: columns, bits: bits, group: group, symmetric: symmetric)
            var decoded = [Float](repeating: 0, count: rows * columns)
            decoded.withUnsafeMutableBufferPointer { packed.dequantizeRows(0 ..< rows, into: $0.baseAddress!) }
            for r in 0 ..< rows {
                for c in 0 ..< columns {
                    let index = packed.scaleIndex(row: r, group: packed.group(ofColumn: c))
                    let zero: Float
                    switch packed.zero {
                    case .constant(let z): zero = z
                    case .perGroup(let zs): zero = zs[index]
                    case .offset: zero = 0
                    }
                    #expect(decoded[r * columns + c] == packed.scales[index] * (Float(packed.code(row: r, column: c)) - zero))
                }
            }
            // The grid is coarse at 1-3 bits, but every value is within half a step of the original
            // where it lies inside the grid's range.
            if bits >= 4 {
                #expect(relativeError(decoded, values) < 0.6 / Float(1 << (bits - 1)), "bits \(bits) group \(group)")
            }
            let weight = try Weight(packed: packed)
            let x = Self.inputs(rows: 3, cols: columns, seed: 11)
            let packedProduct = try WeightProduct.linear(x, weight, bias: nil, key: nil, conversions: nil, tileElements: 80)
            let denseProduct = try WeightProduct.linear(
                x, try Weight(dense: decoded, shape: [rows, columns]), bias: nil, key: nil, conversions: nil)
            #expect(relativeError(packedProduct.data, denseProduct.data) < 1e-6)
            let groups = (columns + group - 1) / group
            let zeroBytes = symmetric ? 0 : (rows * groups * bits + 7) / 8
            #expect(weight.byteCount == rows * ((columns * bits + 7) / 8) + rows * groups * 2 + zeroBytes)
        }
    }

    /// The C conversion of whole rows (what prefill and evaluation tiles use) gives exactly the
    /// values of the element-by-element decoding, for 4- and 8-bit codes, every zero form, per
    /// channel and in groups with a ragged last group; the shapes it does not take (odd 4-bit
    /// groups, other widths, a tensor-wide scale) fall back to the same values.
    @Test func packedRowsConvertInCAsElementByElement() throws {
        var generator = TestGenerator(seed: 77)
        for bits in [3, 4, 8] {
            for (columns, granularity) in [(64, PackedWeight.Granularity.channel), (96, .group(64)), (40, .group(16)), (42, .group(14)), (40, .group(7)), (32, .tensor)] {
                let rows = 5
                let perRow = Self.size(granularity).map { (columns + $0 - 1) / $0 } ?? 1
                let groups = granularity == .tensor ? 1 : rows * perRow
                let top = UInt8((1 << bits) - 1)
                let codes = (0 ..< rows * columns).map { _ in UInt8.random(in: 0 ... top, using: &generator) }
                let scales = generator.floats(groups, in: 0.001 ... 0.5)
                for zero in [PackedWeight.ZeroPoint.constant(Float(1 << (bits - 1))), .perGroup(generator.floats(groups, in: 0 ... Float(top)).map { $0.rounded() }), .offset(generator.floats(groups))] {
                    let packed = try PackedWeight(
                        rows: rows, columns: columns, bits: bits, granularity: granularity,
                        codes: PackedWeight.pack(codes, rows: rows, columns: columns, bits: bits), scales: scales, scaleType: .f32, zero: zero)
                    var fast = [Float](repeating: .nan, count: 3 * columns)
                    var slow = [Float](repeating: 0, count: 3 * columns)
                    fast.withUnsafeMutableBufferPointer { packed.dequantizeRows(1 ..< 4, into: $0.baseAddress!) }
                    slow.withUnsafeMutableBufferPointer { packed.dequantizeRowsElementwise(1 ..< 4, into: $0.baseAddress!) }
                    #expect(fast.map(\.bitPattern) == slow.map(\.bitPattern), "bits \(bits) \(columns) \(granularity) \(zero)")
                    #expect(!fast.contains { $0.isNaN })
                }
            }
        }
    }

    private static func size(_ granularity: PackedWeight.Granularity) -> Int? {
        if case .group(let size) = granularity { return size }
        return nil
    }

    /// The forms' bits per weight: 4-bit codes with an fp16 scale per 32 are 4.5 bits.
    @Test func bitsPerWeightComeFromTheForm() throws {
        let packed = try PackedWeight(
            rows: 4, columns: 64, bits: 4, granularity: .group(32), codes: [UInt8](repeating: 0x88, count: 128),
            scales: [Float](repeating: 0.5, count: 8), zero: .constant(8))
        #expect(try Weight(packed: packed).bitsPerWeight == 4.5)
        #expect(try Weight(dense: [Float](repeating: 0, count: 256), shape: [4, 64]).bitsPerWeight == 32)
        let stored = try #require(try GGUFFile(path: GGUFFixtures.tinyPath).storedTensors().first { $0.dtype == .q8_0 })
        #expect(Weight(stored: stored).bitsPerWeight == 8.5)
        // A wrong count of scales, a scale fp16 cannot hold, codes past the shape: errors, not traps.
        #expect(throws: EngineError.self) {
            try PackedWeight(rows: 4, columns: 64, bits: 4, granularity: .group(32), codes: [UInt8](repeating: 0, count: 128), scales: [1], zero: .constant(8))
        }
        #expect(throws: EngineError.self) {
            try PackedWeight(rows: 1, columns: 2, bits: 4, granularity: .channel, codes: [0], scales: [0.1], zero: .constant(8))
        }
        #expect(throws: EngineError.self) {
            try PackedWeight(rows: 1, columns: 2, bits: 4, granularity: .channel, codes: [0, 0], scales: [1], zero: .constant(8))
        }
    }

    /// Pruned elements are zero in every form: dense values are zeroed, a stored form is masked
    /// as it converts, and packed codes must already decode to zero there.
    @Test func masksHoldZerosInEveryForm() throws {
        let tensors = try GGUFFile(path: GGUFFixtures.tinyPath).storedTensors()
        let tensor = try #require(tensors.first { $0.dtype == .q4_1 })
        let count = tensor.count
        let mask = PruningMask(kept: (0 ..< count).map { $0 % 3 != 0 })
        #expect(abs(mask.sparsity - 1.0 / 3) < 0.01)
        let stored = try Weight(stored: tensor).withMask(mask)
        let values = try stored.floats()
        #expect((0 ..< count).allSatisfy { $0 % 3 != 0 || values[$0] == 0 })
        let x = Self.inputs(rows: 4, cols: stored.inFeatures, seed: 5)
        let tiled = try WeightProduct.linear(x, stored, bias: nil, key: nil, conversions: nil, tileElements: 64)
        let dense = try Weight(dense: try Weight(stored: tensor).floats(), shape: tensor.shape, mask: mask)
        #expect(try dense.floats() == values)
        #expect(relativeError(tiled.data, try WeightProduct.linear(x, dense, bias: nil, key: nil, conversions: nil).data) < 1e-6)
        let packed = try Self.quantize(values, rows: tensor.shape[0], columns: tensor.shape[1], bits: 4, group: 32, symmetric: true)
        #expect(throws: Never.self) { try Weight(packed: packed, mask: mask) }
        let unprunedPacked = try Self.quantize(
            try Weight(stored: tensor).floats(), rows: tensor.shape[0], columns: tensor.shape[1], bits: 4, group: 32, symmetric: true)
        #expect(throws: EngineError.self) { try Weight(packed: unprunedPacked, mask: mask) }
    }

    /// A model whose layer is replaced by its quantized form computes as with the dequantized
    /// dense values, holds fewer bytes, and a snapshot brings the dense form back.
    @Test func modelWithAPackedLayerComputesAsWithItsDenseValues() throws {
        let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("arch/llama")
        let model = try #require(try ModelLoader.model(for: try Checkpoint.open(folder.path)) as? CausalLanguageModel)
        let entry = try #require(model.names.entry("layer.1.mlp.up"))
        #expect(entry.kind == .linear(.outIn))
        let original = try model.weights.weight(entry.weight)
        let packed = try Self.quantize(
            try original.floats(), rows: original.rowCount, columns: original.rowLength, bits: 4, group: 16, symmetric: false)
        let ids = [3, 1, 4, 1, 5, 9, 2, 6]
        let bytesBefore = model.weights.heldBytes
        try model.weights.set(entry.weight, Weight(packed: packed))
        #expect(model.weights.heldBytes == bytesBefore - original.byteCount + packed.byteCount)
        let fromPacked = try model.forward(ids)
        let quantizedDense = try model.weights.weight(entry.weight).floats()
        let snapshot = model.weights.snapshot()
        try model.weights.replace(entry.weight, with: quantizedDense)
        let fromDense = try model.forward(ids)
        #expect(relativeError(fromPacked.data, fromDense.data) < 1e-6)
        model.weights.restore(snapshot)
        #expect(try model.weights.weight(entry.weight).formName == "int4 g16 asym")
        #expect(throws: EngineError.self) { try model.weights.set(entry.weight, Weight(dense: [0, 0], shape: [1, 2])) }
    }

    /// A conversion cache keeps at most its budget, and a changed weight is a new key.
    @Test func conversionCacheIsBoundedAndKeyedByVersion() throws {
        let tensors = try GGUFFile(path: GGUFFixtures.tinyPath).storedTensors().filter { $0.shape.count == 2 }
        let cache = ConversionCache(budgetBytes: 40_000, largestBytes: 36_000)
        for tensor in tensors { _ = try cache.floats(.init(name: tensor.name, version: 0), Weight(stored: tensor)) }
        #expect(cache.bytes <= 40_000)
        let big = try #require(tensors.first { $0.count * 4 > 36_000 })
        #expect(try cache.floats(.init(name: big.name, version: 0), Weight(stored: big)) == nil)
        let small = try #require(tensors.first { $0.count * 4 <= 36_000 })
        let first = try #require(try cache.floats(.init(name: small.name, version: 0), Weight(stored: small)))
        let changed = try Weight(dense: first.map { $0 * 2 }, shape: small.shape)
        let second = try #require(try cache.floats(.init(name: small.name, version: 1), changed))
        #expect(second == first.map { $0 * 2 })
    }
}
