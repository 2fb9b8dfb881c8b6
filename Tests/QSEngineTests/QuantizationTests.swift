import Foundation
import QSTestSupport
import Testing
@testable import QSEngine

/// Round-to-nearest on every grid: the min-max grid within half a step of every weight, the
/// MSE clip search never worse, binarisation, masks, and a model computing from the result.
@Suite struct QuantizationTests {
    static func matrix(rows: Int, columns: Int, seed: UInt64) -> [Float] {
        var generator = TestGenerator(seed: seed)
        // Weights like a trained layer's: mostly small, a few outliers.
        return (0 ..< rows * columns).map { i in
            let x = Float.random(in: -0.05 ... 0.05, using: &generator)
            return i % 97 == 0 ? x * 12 : x
        }
    }

    static func decode(_ packed: PackedWeight) -> [Float] {
        var out = [Float](repeating: 0, count: packed.rows * packed.columns)
        out.withUnsafeMutableBufferPointer { packed.dequantizeRows(0 ..< packed.rows, into: $0.baseAddress!) }
        return out
    }

    static let schemes: [QuantizationScheme] = [2, 3, 4, 5, 8].flatMap { bits in
        [PackedWeight.Granularity.group(32), .group(40), .channel, .tensor].flatMap { granularity in
            [true, false].map { QuantizationScheme(bits: bits, symmetric: $0, granularity: granularity, clip: .none) }
        }
    }

    /// With the min-max grid, every weight is within half a step of its code's value: the grid
    /// spans the group, so nothing is clipped (up to the rounding of the scale to fp16, at most
    /// 2^-11 of it for each of the 2^bits levels). Rows of 72 with groups of 40 end ragged.
    @Test(arguments: schemes)
    func minMaxGridIsWithinHalfAStep(scheme: QuantizationScheme) throws {
        let rows = 6
        let columns = 72
        let values = Self.matrix(rows: rows, columns: columns, seed: UInt64(scheme.bits))
        let packed = try RoundToNearest.quantize(values, rows: rows, columns: columns, scheme: scheme)
        let decoded = Self.decode(packed)
        for r in 0 ..< rows {
            for c in 0 ..< columns {
                let scale = packed.scales[packed.scaleIndex(row: r, group: packed.group(ofColumn: c))]
                let error = abs(decoded[r * columns + c] - values[r * columns + c])
                #expect(error <= scale * (0.5 + Float(1 << scheme.bits) / 2048), "\(scheme) [\(r), \(c)]: error \(error), step \(scale)")
            }
        }
        #expect(packed.groupsPerRow == (scheme.granularity == .group(40) ? 2 : scheme.granularity == .group(32) ? 3 : 1))
    }

    /// The clip search keeps the min-max grid among its candidates: never a larger squared
    /// error, per group or in all, and smaller where outliers stretch the range.
    @Test(arguments: [2, 3, 4, 8])
    func mseClipIsNeverWorse(bits: Int) throws {
        let rows = 16
        let columns = 64
        let values = Self.matrix(rows: rows, columns: columns, seed: 99 + UInt64(bits))
        for symmetric in [true, false] {
            let plain = QuantizationScheme(bits: bits, symmetric: symmetric, granularity: .group(32), clip: .none)
            var searched = plain
            searched.clip = .mse
            let a = Self.decode(try RoundToNearest.quantize(values, rows: rows, columns: columns, scheme: plain))
            let b = Self.decode(try RoundToNearest.quantize(values, rows: rows, columns: columns, scheme: searched))
            var totalA = 0.0
            var totalB = 0.0
            for group in 0 ..< rows * 2 {
                let range = group * 32 ..< (group + 1) * 32
                let errorA = range.reduce(0.0) { $0 + Double((a[$1] - values[$1]) * (a[$1] - values[$1])) }
                let errorB = range.reduce(0.0) { $0 + Double((b[$1] - values[$1]) * (b[$1] - values[$1])) }
                #expect(errorB <= errorA * (1 + 1e-6), "bits \(bits) sym \(symmetric) group \(group)")
                totalA += errorA
                totalB += errorB
            }
            // At 8 bits the min-max grid is already close to the best; at 4 and fewer the outliers
            // make a shrunk range pay.
            if bits <= 4 { #expect(totalB < totalA, "bits \(bits) sym \(symmetric): the search found nothing better") }
        }
    }

    /// One bit: sign(w) times the group's mean |w|.
    @Test func binarisationIsSignTimesMeanMagnitude() throws {
        let values: [Float] = [0.5, -0.25, 0.125, -1, 0.3, 0.2, -0.1, 0]
        let packed = try RoundToNearest.quantize(values, rows: 2, columns: 4, scheme: QuantizationScheme(bits: 1, symmetric: true, granularity: .channel))
        let decoded = Self.decode(packed)
        for row in 0 ..< 2 {
            let part = values[row * 4 ..< row * 4 + 4]
            let mean = part.reduce(0) { $0 + abs($1) } / 4
            for (offset, w) in part.enumerated() {
                #expect(abs(decoded[row * 4 + offset] - (w >= 0 ? mean : -mean)) <= mean * 1e-3)
            }
        }
        // Two rows of one byte of codes (4 bits of it used) and an fp16 scale each: 6 bits a weight.
        #expect(try Weight(packed: packed).bitsPerWeight == 6)
    }

    /// A pruned weight stays exactly zero on every grid with a zero; binarisation refuses one.
    @Test func maskedWeightsStayZero() throws {
        let rows = 4
        let columns = 48
        let values = Self.matrix(rows: rows, columns: columns, seed: 5)
        let mask = PruningMask(kept: (0 ..< rows * columns).map { $0 % 2 == 0 })
        for scheme in Self.schemes {
            let packed = try RoundToNearest.quantize(values, rows: rows, columns: columns, scheme: scheme, mask: mask)
            let decoded = Self.decode(packed)
            #expect((0 ..< rows * columns).allSatisfy { $0 % 2 == 0 || decoded[$0] == 0 }, "\(scheme)")
            #expect(throws: Never.self) { try Weight(packed: packed, mask: mask) }
        }
        #expect(throws: EngineError.self) {
            try RoundToNearest.quantize(values, rows: rows, columns: columns, scheme: QuantizationScheme(bits: 1, symmetric: true, granularity: .channel), mask: mask)
        }
    }

    /// NaN weights and scales fp16 cannot hold are errors, not codes.
    @Test func unquantizableWeightsAreErrors() {
        let scheme = QuantizationScheme(bits: 4, symmetric: true, granularity: .channel)
        #expect(throws: EngineError.self) { try RoundToNearest.quantize([1, .nan], rows: 1, columns: 2, scheme: scheme) }
        #expect(throws: EngineError.self) { try RoundToNearest.quantize([1e9, 1], rows: 1, columns: 2, scheme: scheme) }
        #expect(throws: EngineError.self) { try RoundToNearest.quantize([1, 2, 3], rows: 1, columns: 2, scheme: scheme) }
    }

    /// A quantized model computes from its packed weights, each layer quantized from the weights
    /// as loaded: quantizing again replaces the earlier quantization, never compounds it.
    @Test func requantizingStartsFromTheWeightsAsLoaded() throws {
        let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("arch/gpt2")
        let model = try #require(try ModelLoader.model(for: try Checkpoint.open(folder.path)) as? CausalLanguageModel)
        let linears = model.names.select { if case .linear = $0.kind { true } else { false } }
        #expect(linears.allSatisfy { $0.kind == .linear(.inOut) })
        let ids = [3, 1, 4, 1, 5, 9, 2, 6]
        let before = try model.forward(ids)
        let coarse = QuantizationScheme(bits: 2, symmetric: true, granularity: .channel)
        let fine = QuantizationScheme(bits: 8, symmetric: true, granularity: .group(16), clip: .mse)
        _ = try ModelQuantizer.roundToNearest(model.weights, linears, scheme: coarse)
        let damaged = try model.forward(ids)
        let report = try ModelQuantizer.roundToNearest(model.weights, linears, scheme: fine)
        let repaired = try model.forward(ids)
        #expect(relativeError(damaged.data, before.data) > 0.05)
        #expect(relativeError(repaired.data, before.data) < 0.01)
        #expect(report.allSatisfy { $0.sqnr > 40 })
        // The packed form of GPT-2's in×out weights is out×in and computes the same.
        let entry = linears[0]
        let packed = try model.weights.weight(entry.weight)
        #expect(packed.layout == .outIn && packed.formName == "int8 g16")
        let original = try model.weights.original(entry.weight)
        #expect(packed.outFeatures == original.outFeatures && packed.inFeatures == original.inFeatures)
    }
}
