import Foundation
import QSTestSupport
import Testing
@testable import QSEngine
import CQSKernels

/// The block kernels (matrix-vector products on stored Q8_0, Q4_0, Q4_1 blocks) against
/// dequantize-then-fp32 in double precision, on every vector path this CPU runs, at shape
/// edges (one row, odd row counts, one block a row, long rows) and with a GGUF llama q/k
/// projection's permuted rows.
@Suite(.serialized) struct BlockKernelTests {
    static func tensor(_ type: DType, rows: Int, columns: Int, heads: Int? = nil, seed: UInt64) throws -> (StoredTensor, URL) {
        var random = TestGenerator(seed: seed)
        var values = (0 ..< rows * columns).map { _ in Float.random(in: -1 ..< 1, using: &random) * 0.05 }
        for c in 0 ..< min(columns, 5) { values[c] = 0 }  // a partly zero first block
        let blocks = GGMLQuantize.quantize(values, as: type)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("qs-blocks-\(UUID().uuidString)")
        try Data(blocks).write(to: url)
        let file = try MappedFile(path: url.path)
        return (StoredTensor(name: "w", dtype: type, shape: [rows, columns], file: file, offset: 0, byteCount: blocks.count, rotaryPermutationHeads: heads), url)
    }

    @Test(arguments: [DType.q8_0, .q4_0, .q4_1])
    func matchesDequantizedProduct(type: DType) throws {
        for (rows, columns, heads) in [(1, 32, nil), (37, 64, nil), (64, 576, nil), (5, 1536, nil), (96, 128, 3 as Int?)] {
            let (stored, url) = try Self.tensor(type, rows: rows, columns: columns, heads: heads, seed: UInt64(rows * 7 + columns))
            defer { try? FileManager.default.removeItem(at: url) }
            let weight = Weight(stored: stored)
            #expect(BlockKernels.takes(weight))
            let dequantized = try Dequantize.floats(stored)
            var random = TestGenerator(seed: 99)
            let x = (0 ..< columns).map { _ in Float.random(in: -2 ..< 2, using: &random) }
            let reference = (0 ..< rows).map { r in (0 ..< columns).reduce(0.0) { $0 + Double(x[$1]) * Double(dequantized[r * columns + $1]) } }
            let scale = (0 ..< rows).map { r in (0 ..< columns).reduce(0.0) { $0 + abs(Double(x[$1]) * Double(dequantized[r * columns + $1])) } }
            for path in BlockKernels.Path.allCases where path.rawValue <= BlockKernels.best.rawValue {
                try BlockKernels.$path.withValue(path) {
                    var y = [Float](repeating: .nan, count: rows)
                    try x.withUnsafeBufferPointer { xp in try y.withUnsafeMutableBufferPointer { try BlockKernels.multiply(weight, xp.baseAddress!, into: $0.baseAddress!) } }
                    let worst = (0 ..< rows).map { abs(Double(y[$0]) - reference[$0]) / max(scale[$0], 1e-12) }.max() ?? 0
                    #expect(worst < 1e-5, "\(type.rawValue) \(rows)×\(columns) heads \(heads.map(String.init) ?? "-") on \(path): \(worst)")
                }
            }
        }
    }

    /// The int8 path (x quantized per 32-value block, integer dot products) is within the
    /// error x's rounding allows: Σ |w| · d_x / 2 per block, d_x = max|x| / 127, on every path.
    @Test(arguments: [DType.q8_0, .q4_0, .q4_1])
    func int8ActivationsStayWithinTheirRoundingBound(type: DType) throws {
        for (rows, columns) in [(1, 32), (37, 64), (64, 576), (6, 1536)] {
            let (stored, url) = try Self.tensor(type, rows: rows, columns: columns, seed: UInt64(rows * 11 + columns))
            defer { try? FileManager.default.removeItem(at: url) }
            let weight = Weight(stored: stored)
            let dequantized = try Dequantize.floats(stored)
            var random = TestGenerator(seed: 17)
            let x = (0 ..< columns).map { _ in Float.random(in: -2 ..< 2, using: &random) }
            let blockMax = (0 ..< columns / 32).map { b in x[b * 32 ..< b * 32 + 32].map { abs(Double($0)) }.max()! }
            for path in BlockKernels.Path.allCases where path.rawValue <= BlockKernels.best.rawValue {
                try BlockKernels.$path.withValue(path) {
                    var y = [Float](repeating: .nan, count: rows)
                    try BlockKernels.$activations.withValue(.int8) {
                        try x.withUnsafeBufferPointer { xp in try y.withUnsafeMutableBufferPointer { try BlockKernels.multiply(weight, xp.baseAddress!, into: $0.baseAddress!) } }
                    }
                    var exactCount = 0
                    for r in 0 ..< rows {
                        var reference = 0.0, bound = 0.0, scale = 0.0
                        for c in 0 ..< columns {
                            let w = Double(dequantized[r * columns + c])
                            reference += Double(x[c]) * w
                            bound += abs(w) * blockMax[c / 32] / 254
                            scale += abs(Double(x[c]) * w)
                        }
                        let error = abs(Double(y[r]) - reference)
                        #expect(error <= bound * 1.001 + 1e-5 * scale, "\(type.rawValue) \(rows)×\(columns) row \(r) on \(path): \(error) > \(bound)")
                        if error <= 1e-6 * scale { exactCount += 1 }
                    }
                    // It is not the exact product: most rows differ beyond fp32 rounding.
                    #expect(exactCount < max(1, rows), "\(type.rawValue) \(rows)×\(columns) on \(path): the int8 path gave the exact products")
                }
            }
        }
    }

    /// Packed weights (qs's own quantizations) multiplied as packed: int4 and int8, symmetric
    /// and asymmetric, per channel and per group of 32/64/128 with a ragged last group, on every
    /// path, exact against the dequantized product and int8 within its rounding bound.
    @Test func packedWeightsMatchDequantizedProduct() throws {
        let schemes: [(Int, Bool, PackedWeight.Granularity)] = [
            (4, true, .group(32)), (4, false, .group(64)), (4, false, .group(128)), (8, true, .channel), (8, false, .group(32)),
        ]
        for (bits, symmetric, granularity) in schemes {
            for (rows, columns) in [(1, 32), (37, 576), (5, 160)] {
                var random = TestGenerator(seed: UInt64(bits * 1000 + rows * 7 + columns))
                let values = (0 ..< rows * columns).map { _ in Float.random(in: -1 ..< 1, using: &random) * 0.05 }
                let packed = try RoundToNearest.quantize(
                    values, rows: rows, columns: columns, scheme: QuantizationScheme(bits: bits, symmetric: symmetric, granularity: granularity))
                let weight = try Weight(packed: packed)
                #expect(BlockKernels.takesPacked(weight), "\(bits) bits \(granularity)")
                let dequantized = try weight.floats()
                let x = (0 ..< columns).map { _ in Float.random(in: -2 ..< 2, using: &random) }
                let blockMax = (0 ..< columns / 32).map { b in x[b * 32 ..< b * 32 + 32].map { abs(Double($0)) }.max()! }
                for path in BlockKernels.Path.allCases where path.rawValue <= BlockKernels.best.rawValue {
                    try BlockKernels.$path.withValue(path) {
                        for mode in BlockKernels.Activations.allCases {
                            var y = [Float](repeating: .nan, count: rows)
                            try BlockKernels.$activations.withValue(mode) {
                                try x.withUnsafeBufferPointer { xp in try y.withUnsafeMutableBufferPointer { try BlockKernels.multiply(packed: weight, xp.baseAddress!, into: $0.baseAddress!) } }
                            }
                            for r in 0 ..< rows {
                                var reference = 0.0, bound = 0.0, scale = 0.0
                                for c in 0 ..< columns {
                                    let w = Double(dequantized[r * columns + c])
                                    reference += Double(x[c]) * w
                                    // x's rounding times the code part of w (|s · code| ≤ |w| + |zero term|): bound it by the group's largest |s · code|.
                                    bound += (abs(w) + 0.05 * 2) * blockMax[c / 32] / 254
                                    scale += abs(Double(x[c]) * w)
                                }
                                let error = abs(Double(y[r]) - reference)
                                let allowed = mode == .exact ? 2e-5 * (scale + 1) : bound * 1.001 + 2e-5 * (scale + 1)
                                #expect(error <= allowed, "\(bits) bits \(symmetric ? "sym" : "asym") \(granularity) \(rows)×\(columns) row \(r) \(mode) on \(path): \(error)")
                            }
                        }
                    }
                }
            }
        }
    }

    /// A NaN among the activations makes the int8 path's products NaN, as the exact path's are
    /// (the non-finite probe depends on it), for blocks and packed weights, on every path.
    @Test func int8PathPropagatesNaN() throws {
        let (stored, url) = try Self.tensor(.q4_0, rows: 8, columns: 64, seed: 5)
        defer { try? FileManager.default.removeItem(at: url) }
        let packed = try RoundToNearest.quantize(
            (0 ..< 8 * 64).map { Float($0 % 13) * 0.01 - 0.06 }, rows: 8, columns: 64,
            scheme: QuantizationScheme(bits: 4, symmetric: false, granularity: .group(32)))
        var x = [Float](repeating: 0.5, count: 64)
        x[40] = .nan
        for path in BlockKernels.Path.allCases where path.rawValue <= BlockKernels.best.rawValue {
            try BlockKernels.$path.withValue(path) {
                for weight in [Weight(stored: stored), try Weight(packed: packed)] {
                    var y = [Float](repeating: 0, count: 8)
                    try BlockKernels.$activations.withValue(.int8) {
                        try x.withUnsafeBufferPointer { xp in
                            try y.withUnsafeMutableBufferPointer { out in
                                if BlockKernels.takes(weight) {
                                    try BlockKernels.multiply(weight, xp.baseAddress!, into: out.baseAddress!)
                                } else {
                                    try BlockKernels.multiply(packed: weight, xp.baseAddress!, into: out.baseAddress!)
                                }
                            }
                        }
                    }
                    let allNaN = y.allSatisfy { $0.isNaN }
                    #expect(allNaN, "\(path): \(y)")
                }
            }
        }
    }

    /// fp32 weights held in place: the matrix-vector kernel, with a ragged tail of columns.
    @Test func f32MatrixVectorProduct() throws {
        for (rows, columns) in [(1, 7), (37, 70), (64, 576), (9, 1536)] {
            var random = TestGenerator(seed: UInt64(rows + columns))
            let w = (0 ..< rows * columns).map { _ in Float.random(in: -1 ..< 1, using: &random) }
            let x = (0 ..< columns).map { _ in Float.random(in: -1 ..< 1, using: &random) }
            for path in BlockKernels.Path.allCases where path.rawValue <= BlockKernels.best.rawValue {
                BlockKernels.$path.withValue(path) {
                    var y = [Float](repeating: .nan, count: rows)
                    w.withUnsafeBufferPointer { wp in
                        x.withUnsafeBufferPointer { xp in
                            y.withUnsafeMutableBufferPointer { BlockKernels.multiply(floats: wp.baseAddress!, rows: rows, columns: columns, xp.baseAddress!, into: $0.baseAddress!) }
                        }
                    }
                    for r in 0 ..< rows {
                        let reference = (0 ..< columns).reduce(0.0) { $0 + Double(w[r * columns + $1]) * Double(x[$1]) }
                        let scale = (0 ..< columns).reduce(0.0) { $0 + abs(Double(w[r * columns + $1]) * Double(x[$1])) }
                        #expect(abs(Double(y[r]) - reference) <= 1e-6 * scale + 1e-30, "\(rows)×\(columns) row \(r) on \(path)")
                    }
                }
            }
        }
    }

    /// Decoding attention (a task per head and row) against attention in double precision:
    /// causal with a past, grouped-query heads, a key mask, head widths of whole vectors and not.
    @Test func decodeAttentionMatchesReference() throws {
        for (rows, keys, heads, kvHeads, headDim, causal, masked) in [
            (1, 1, 1, 1, 64, true, false), (1, 37, 9, 3, 64, true, false), (3, 130, 4, 2, 128, true, false),
            (4, 9, 2, 1, 24, true, false), (2, 20, 3, 3, 32, false, true), (1, 2500, 2, 1, 16, true, false),
        ] {
            var random = TestGenerator(seed: UInt64(rows * 131 + keys))
            let q = Activations(rows: rows, cols: heads * headDim, data: (0 ..< rows * heads * headDim).map { _ in Float.random(in: -1 ..< 1, using: &random) })
            let k = (0 ..< keys * kvHeads * headDim).map { _ in Float.random(in: -1 ..< 1, using: &random) }
            let v = (0 ..< keys * kvHeads * headDim).map { _ in Float.random(in: -1 ..< 1, using: &random) }
            let mask: [Bool]? = masked ? (0 ..< keys).map { $0 % 3 != 1 } : nil
            for path in BlockKernels.Path.allCases where path.rawValue <= BlockKernels.best.rawValue {
                BlockKernels.$path.withValue(path) {
                    let out = k.withUnsafeBufferPointer { kp in
                        v.withUnsafeBufferPointer { vp in
                            Kernels.attention(q: q, k: kp.baseAddress!, v: vp.baseAddress!, keys: keys, heads: heads, kvHeads: kvHeads, headDim: headDim, causal: causal, keyMask: mask)
                        }
                    }
                    let past = keys - rows, group = heads / kvHeads, scale = 1 / Double(headDim).squareRoot()
                    for r in 0 ..< rows {
                        for h in 0 ..< heads {
                            let visible = causal ? past + r + 1 : keys
                            let kv = h / group
                            var scores = (0 ..< visible).map { j in
                                (0 ..< headDim).reduce(0.0) { $0 + Double(q.data[r * heads * headDim + h * headDim + $1]) * Double(k[j * kvHeads * headDim + kv * headDim + $1]) } * scale
                            }
                            if let mask { for j in 0 ..< visible where !mask[j] { scores[j] = -.infinity } }
                            let top = scores.max()!
                            let weights = scores.map { Foundation.exp($0 - top) }
                            let total = weights.reduce(0, +)
                            for i in 0 ..< headDim {
                                let expected = (0 ..< visible).reduce(0.0) { $0 + weights[$1] / total * Double(v[$1 * kvHeads * headDim + kv * headDim + i]) }
                                let got = Double(out.data[r * heads * headDim + h * headDim + i])
                                #expect(abs(got - expected) < 2e-5, "rows \(rows) keys \(keys) head \(h) dim \(i) on \(path): \(got) vs \(expected)")
                            }
                        }
                    }
                }
            }
        }
    }

    /// The decode pool hands out every item exactly once, with any chunk, thread count and total,
    /// and a job started from inside a job runs on its caller.
    @Test func poolCoversEveryItemOnce() {
        // The thread count grows 2 → 4 → 8: workers made after earlier jobs must not take those.
        for (total, chunk, threads) in [(1, 1, 2), (1000, 7, 2), (64, 64, 2), (513, 16, 4), (10, 3, 1), (5000, 3, 8), (777, 1, 8)] {
            var counts = [Int32](repeating: 0, count: total)
            counts.withUnsafeMutableBufferPointer { buffer in
                qs_parallel(total, chunk, Int32(threads), { context, begin, end in
                    let counts = context!.assumingMemoryBound(to: Int32.self)
                    for i in begin ..< end { counts[i] += 1 }
                    // Nested: runs here, on this thread, over its own small range.
                    var inner: [Int32] = [0, 0, 0]
                    inner.withUnsafeMutableBufferPointer { qs_parallel(3, 1, 2, { c, b, e in for i in b ..< e { c!.assumingMemoryBound(to: Int32.self)[i] += 1 } }, $0.baseAddress!) }
                    if inner != [1, 1, 1] { counts[begin] += 100 }
                }, buffer.baseAddress!)
            }
            #expect(counts.allSatisfy { $0 == 1 }, "total \(total) chunk \(chunk) threads \(threads)")
        }
    }

    /// A linear layer of one row goes through the kernels and gives what the tiled GEMM gives.
    @Test func linearLayerOfOneRowUsesTheKernels() throws {
        let (stored, url) = try Self.tensor(.q4_1, rows: 48, columns: 96, seed: 3)
        defer { try? FileManager.default.removeItem(at: url) }
        let weight = Weight(stored: stored)
        var random = TestGenerator(seed: 5)
        let x = Activations(rows: 1, cols: 96, data: (0 ..< 96).map { _ in Float.random(in: -1 ..< 1, using: &random) })
        let bias = (0 ..< 48).map { Float($0) * 0.01 }
        let kernel = try WeightProduct.linear(x, weight, bias: bias, key: nil, conversions: nil)
        // Three rows go through GEMM on converted tiles; the first row is the same input.
        let three = Activations(rows: 3, cols: 96, data: x.data + x.data + x.data)
        let tiled = try WeightProduct.linear(three, weight, bias: bias, key: nil, conversions: nil)
        for o in 0 ..< 48 { #expect(abs(kernel.data[o] - tiled.data[o]) <= 1e-5 * max(1, abs(tiled.data[o])), "\(o)") }
    }
}
