import Foundation
import QSTestSupport
import Testing
@testable import QSEngine

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
                BlockKernels.path = path
                defer { BlockKernels.path = BlockKernels.best }
                var y = [Float](repeating: .nan, count: rows)
                try x.withUnsafeBufferPointer { xp in try y.withUnsafeMutableBufferPointer { try BlockKernels.multiply(weight, xp.baseAddress!, into: $0.baseAddress!) } }
                let worst = (0 ..< rows).map { abs(Double(y[$0]) - reference[$0]) / max(scale[$0], 1e-12) }.max() ?? 0
                #expect(worst < 1e-5, "\(type.rawValue) \(rows)×\(columns) heads \(heads.map(String.init) ?? "-") on \(path): \(worst)")
            }
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
