import Foundation
import QSTestSupport
import Testing
@testable import QSEngine

/// GPTQ against the published algorithm (scripts/reference/make_gptq_fixtures.py, PyTorch in
/// double precision): the same dequantized weights, scales, zero points and g_idx, over
/// symmetric and asymmetric grids, ragged groups, groups that span lazy blocks, act-order with
/// static groups and with g_idx.
@Suite struct GPTQTests {
    struct Case: Decodable, CustomStringConvertible {
        var name: String
        var rows: Int
        var columns: Int
        var bits: Int
        var sym: Bool
        var group: Int
        var act_order: Bool
        var static_groups: Bool
        var block: Int
        var damp: Double
        var W: [Float]
        var X: [Float]
        var dequantized: [Double]
        var scales: [Double]
        var zeros: [Double]
        var g_idx: [Int]
        var description: String { name }
    }

    static let cases: [Case] = {
        struct File: Decodable { var cases: [Case] }
        let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("gptq/cases.json")
        return try! JSONDecoder().decode(File.self, from: Data(contentsOf: url)).cases
    }()

    static func run(_ c: Case, actOrder: Bool? = nil) throws -> GPTQ.Result {
        let hessian = HessianAccumulator(size: c.columns)
        hessian.add(Activations(rows: c.X.count / c.columns, cols: c.columns, data: c.X))
        let scheme = QuantizationScheme(
            bits: c.bits, symmetric: c.sym, granularity: c.group > 0 ? .group(c.group) : .channel, clip: .none, scaleType: .f32)
        return try GPTQ.quantize(
            c.W, rows: c.rows, columns: c.columns, hessian: hessian, scheme: scheme,
            options: GPTQ.Options(damp: c.damp, blockSize: c.block, actOrder: actOrder ?? c.act_order, staticGroups: c.static_groups))
    }

    @Test(arguments: cases)
    func matchesThePublishedAlgorithm(_ c: Case) throws {
        let result = try Self.run(c)
        let packed = result.packed
        var decoded = [Float](repeating: 0, count: c.rows * c.columns)
        decoded.withUnsafeMutableBufferPointer { packed.dequantizeRows(0 ..< c.rows, into: $0.baseAddress!) }
        var difference = 0.0
        var norm = 0.0
        for i in decoded.indices {
            difference += (Double(decoded[i]) - c.dequantized[i]) * (Double(decoded[i]) - c.dequantized[i])
            norm += c.dequantized[i] * c.dequantized[i]
        }
        #expect((difference / norm).squareRoot() < 1e-4, "\(c.name): relative difference \((difference / norm).squareRoot())")
        // Scales and zero points per (row, group), as the reference lays them out.
        let groups = c.scales.count / c.rows
        #expect(packed.scales.count == c.scales.count)
        for i in 0 ..< min(packed.scales.count, c.scales.count) {
            #expect(abs(Double(packed.scales[i]) - c.scales[i]) <= 1e-5 * abs(c.scales[i]), "\(c.name): scale \(i)")
        }
        for r in 0 ..< c.rows {
            for g in 0 ..< groups {
                let zero: Float = switch packed.zero {
                case .constant(let z): z
                case .perGroup(let zeros): zeros[r * groups + g]
                case .offset(let offsets): offsets[r * groups + g]
                }
                #expect(Double(zero) == c.zeros[r * groups + g], "\(c.name): zero of row \(r) group \(g)")
            }
        }
        if c.act_order && !c.static_groups && c.group > 0 {
            #expect(packed.groupIndex?.map(Int.init) == c.g_idx)
        } else {
            #expect(packed.groupIndex == nil)
        }
    }

    /// GPTQ's purpose: on the calibration inputs, its output error ‖X(W − Ŵ)ᵀ‖ is below RTN's
    /// on the same grid, for every case (act-order or not).
    @Test(arguments: cases)
    func lowersTheOutputErrorBelowRTN(_ c: Case) throws {
        let gptq = try Self.run(c).packed
        let scheme = QuantizationScheme(
            bits: c.bits, symmetric: c.sym, granularity: c.group > 0 ? .group(c.group) : .channel, clip: .none, scaleType: .f32)
        let rtn = try RoundToNearest.quantize(c.W, rows: c.rows, columns: c.columns, scheme: scheme)
        func outputError(_ packed: PackedWeight) -> Double {
            var q = [Float](repeating: 0, count: c.rows * c.columns)
            q.withUnsafeMutableBufferPointer { packed.dequantizeRows(0 ..< c.rows, into: $0.baseAddress!) }
            let tokens = c.X.count / c.columns
            var sum = 0.0
            for t in 0 ..< tokens {
                for r in 0 ..< c.rows {
                    var d = 0.0
                    for k in 0 ..< c.columns { d += Double(c.X[t * c.columns + k]) * Double(c.W[r * c.columns + k] - q[r * c.columns + k]) }
                    sum += d * d
                }
            }
            return sum
        }
        #expect(outputError(gptq) < outputError(rtn) * 0.9, "\(c.name)")
    }

    /// Batches added from several threads at once (each into a partial sum of its own) give
    /// the XᵀX and the channel statistics that adding them one after another gives.
    @Test func concurrentBatchesSumToTheSequentialHessian() throws {
        let columns = 24
        let batches = (0 ..< 32).map { b in
            Activations(rows: 5 + b % 7, cols: columns, data: QuantizationTests.matrix(rows: 5 + b % 7, columns: columns, seed: UInt64(b + 1)))
        }
        let sequential = HessianAccumulator(size: columns)
        for batch in batches { sequential.add(batch) }
        let concurrent = HessianAccumulator(size: columns)
        DispatchQueue.concurrentPerform(iterations: batches.count) { concurrent.add(batches[$0]) }
        #expect(concurrent.tokens == sequential.tokens && concurrent.batches == batches.count)
        for (a, b) in zip(concurrent.matrix, sequential.matrix) { #expect(abs(a - b) <= 1e-4 * max(1, abs(b))) }
        #expect(concurrent.diagonal == (0 ..< columns).map { concurrent.matrix[$0 * columns + $0] })
        #expect(concurrent.absoluteMaxima == sequential.absoluteMaxima)
        // Read, then added to again: the sums go on.
        concurrent.add(batches[0])
        sequential.add(batches[0])
        for (a, b) in zip(concurrent.matrix, sequential.matrix) { #expect(abs(a - b) <= 1e-4 * max(1, abs(b))) }
    }

    /// Dampening retries: a Hessian of rank 1 (every input the same direction) is not positive
    /// definite with no dampening; GPTQ raises it, says so, and still quantizes.
    @Test func aSingularHessianRaisesTheDampening() throws {
        let columns = 16
        let hessian = HessianAccumulator(size: columns)
        let direction = (0 ..< columns).map { Float($0 + 1) }
        hessian.add(Activations(rows: 4, cols: columns, data: (0 ..< 4).flatMap { t in direction.map { $0 * Float(t + 1) } }))
        var retries: [Double] = []
        let weights = QuantizationTests.matrix(rows: 4, columns: columns, seed: 3)
        let result = try GPTQ.quantize(
            weights, rows: 4, columns: columns, hessian: hessian,
            scheme: QuantizationScheme(bits: 4, symmetric: true, granularity: .channel), options: GPTQ.Options(damp: 0),
            onRetry: { retries.append($0) })
        #expect(!retries.isEmpty)
        #expect(result.damp > 0)
        #expect(result.damp == retries.last)
    }

    /// A pruned weight stays exactly zero through GPTQ's updates.
    @Test func prunedWeightsStayZero() throws {
        let c = Self.cases[0]
        let hessian = HessianAccumulator(size: c.columns)
        hessian.add(Activations(rows: c.X.count / c.columns, cols: c.columns, data: c.X))
        let kept = (0 ..< c.rows * c.columns).map { $0 % 3 != 0 }
        let mask = PruningMask(kept: kept)
        var weights = c.W
        for i in weights.indices where !kept[i] { weights[i] = 0 }
        let result = try GPTQ.quantize(
            weights, rows: c.rows, columns: c.columns, hessian: hessian,
            scheme: QuantizationScheme(bits: 4, symmetric: true, granularity: .group(16)), mask: mask)
        var decoded = [Float](repeating: 0, count: c.rows * c.columns)
        decoded.withUnsafeMutableBufferPointer { result.packed.dequantizeRows(0 ..< c.rows, into: $0.baseAddress!) }
        for i in decoded.indices where !kept[i] { #expect(decoded[i] == 0) }
    }
}

/// The Hessian accumulator sums XᵀX over batches (one triangle computed, the matrix whole).
@Suite struct HessianAccumulatorTests {
    @Test func sumsTheGramMatrixOfEveryBatch() {
        var generator = TestGenerator(seed: 11)
        let columns = 7
        let batches = [3, 5, 1].map { rows in Activations(rows: rows, cols: columns, data: generator.floats(rows * columns)) }
        let hessian = HessianAccumulator(size: columns)
        for batch in batches { hessian.add(batch) }
        #expect(hessian.tokens == 9)
        let h = hessian.matrix
        for i in 0 ..< columns {
            for j in 0 ..< columns {
                var expected: Float = 0
                for batch in batches {
                    for r in 0 ..< batch.rows { expected += batch.data[r * columns + i] * batch.data[r * columns + j] }
                }
                #expect(abs(h[i * columns + j] - expected) <= 1e-5 * max(1, abs(expected)), "H[\(i), \(j)]")
            }
        }
    }
}
