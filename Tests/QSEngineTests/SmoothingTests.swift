import Foundation
import Testing
@testable import QSEngine

@Suite struct SmoothingTests {
    /// The final hidden states of every block for a few sequences.
    static func states(_ model: BlockModel) throws -> [Float] {
        try BlockRunner(model: model).runAll([[1, 5, 9, 13, 2, 8], [7, 7, 3]]).flatMap(\.data)
    }

    static func factors(_ count: Int, seed: Int) -> [Float] {
        (0 ..< count).map { Float(0.25 + 3.5 * abs(sin(Double($0 * 7 + seed)))) }
    }

    @Test(arguments: ["llama", "qwen2", "gpt2", "bert"])
    func foldingSmoothingLeavesTheModelsOutputsUnchanged(name: String) throws {
        let model = try BlockRunnerTests.model(name)
        let before = try Self.states(model)
        var folded = 0
        for block in 0 ..< model.config.numHiddenLayers {
            for (index, site) in Smoothing.sites(model, block: block).enumerated() {
                let width = try model.weights.weight(model.names.required(site.layers[0]).weight).inFeatures
                try Smoothing.fold(site, factors: Self.factors(width, seed: 13 * block + index), model: model)
                folded += 1
            }
        }
        let expected = switch name {
        case "gpt2": 3  // ln_1 → qkv, v rows → o, ln_2 → up
        case "bert": 1  // v → o only (post-norm)
        default: 3  // attn_norm → q/k/v, mlp_norm → gate/up, up → down (no v → o with grouped-query attention)
        }
        #expect(folded == expected * model.config.numHiddenLayers)
        let after = try Self.states(model)
        let scale = before.map { abs($0) }.max() ?? 1
        let worst = zip(before, after).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= 1e-4 * scale, "largest change \(worst) against values up to \(scale)")
        // The changed weights are not copies: stored forms keep their bytes and scale as they convert.
        let q = model.names.required(Smoothing.sites(model, block: 0)[0].layers[0]).weight
        #expect(try model.weights.weight(q).isStored)
    }

    @Test func awqSearchIsNeverWorseThanNoScalingAndHelpsAnOutlierChannel() throws {
        let rows = 16
        let columns = 32
        let w = QuantizationTests.matrix(rows: rows, columns: columns, seed: 3)
        // Inputs whose channel 5 is 30 times larger than the rest.
        var x = QuantizationTests.matrix(rows: 64, columns: columns, seed: 4)
        for r in 0 ..< 64 { x[r * columns + 5] *= 30 }
        let hessian = HessianAccumulator(size: columns)
        hessian.add(Activations(rows: 64, cols: columns, data: x))
        let scheme = QuantizationScheme(bits: 3, symmetric: true, granularity: .group(16))
        let search = try Smoothing.awqSearch(weights: [(w, rows, nil, true)], columns: columns, hessian: hessian, scheme: scheme)
        #expect(search.loss <= search.unscaledLoss)
        #expect(search.ratio != nil)
        #expect(search.loss < 0.9 * search.unscaledLoss)
        #expect(search.factors[5] > search.factors.enumerated().filter { $0.offset != 5 }.map(\.element).max()!)
        // The loss is the output error: recompute it directly from the inputs.
        var scaled = w
        for i in scaled.indices { scaled[i] *= search.factors[i % columns] }
        var restored = try RoundToNearest.fakeQuantize(scaled, rows: rows, columns: columns, scheme: scheme)
        for i in restored.indices { restored[i] /= search.factors[i % columns] }
        var direct = 0.0
        for t in 0 ..< 64 {
            for r in 0 ..< rows {
                var d = 0.0
                for c in 0 ..< columns { d += Double(x[t * columns + c]) * Double(restored[r * columns + c] - w[r * columns + c]) }
                direct += d * d
            }
        }
        #expect(abs(direct - search.loss) <= 1e-3 * direct)
    }

    /// The clip search weighted by column importance (AWQ's, from the inputs' Σx²) minimises the
    /// weighted error: never worse there than the min-max grid or the unweighted search.
    @Test func importanceWeightedClipMinimisesTheWeightedError() throws {
        let rows = 8
        let columns = 64
        let w = QuantizationTests.matrix(rows: rows, columns: columns, seed: 21)
        let importance = (0 ..< columns).map { Float(1 + 50 * ($0 % 7 == 0 ? 1 : 0)) }
        func weighted(_ scheme: QuantizationScheme, _ weights: [Float]?) throws -> Double {
            let q = try RoundToNearest.fakeQuantize(w, rows: rows, columns: columns, scheme: scheme, importance: weights)
            return q.indices.reduce(0.0) { $0 + Double(importance[$1 % columns]) * Double((q[$1] - w[$1]) * (q[$1] - w[$1])) }
        }
        let scheme = QuantizationScheme(bits: 3, symmetric: true, granularity: .group(32), clip: .mse)
        let searched = try weighted(scheme, importance)
        let minMax = try weighted(scheme.with(clip: .none), nil)
        let unweighted = try weighted(scheme, nil)
        #expect(searched <= minMax * (1 + 1e-6))
        #expect(searched < unweighted)
    }

    @Test func smoothQuantFactorsBalanceActivationAndWeightMaxima() {
        let factors = Smoothing.smoothQuantFactors(activationMaxima: [4, 1, 0], weights: [[1, 4, 2], [0.5, 1, 1]], columns: 3, alpha: 0.5)
        #expect(abs(factors[0] - 2) < 1e-6)  // sqrt(4) / sqrt(1)
        #expect(abs(factors[1] - 0.5) < 1e-6)  // sqrt(1) / sqrt(4)
        #expect(factors[2] == 1)  // a channel that never fires keeps 1
    }

    @Test func scaledStoredAndDenseFormsAgree() throws {
        let model = try BlockRunnerTests.model("gpt2")
        let name = model.names.required("layer.0.attn.qkv").weight
        let stored = try model.weights.weight(name)
        let dense = try Weight(dense: try stored.floats(), shape: stored.shape, layout: stored.layout)
        let scaling = ChannelScaling(input: Self.factors(stored.inFeatures, seed: 1), output: Self.factors(stored.outFeatures, seed: 2))
        let a = try stored.scaled(scaling)
        let b = try dense.scaled(scaling)
        #expect(try a.floats() == b.floats())
        var rows = [Float](repeating: 0, count: 3 * a.rowLength)
        try rows.withUnsafeMutableBufferPointer { try a.dequantizeRows(2 ..< 5, into: $0.baseAddress!) }
        #expect(rows == Array(try b.floats()[2 * a.rowLength ..< 5 * a.rowLength]))
        let original = try ModelQuantizer.outInValues(stored)
        let scaledValues = try ModelQuantizer.outInValues(a)
        let columns = stored.inFeatures
        for i in stride(from: 0, to: original.count, by: 37) {
            let expected = original[i] * scaling.input![i % columns] * scaling.output![i / columns]
            #expect(abs(scaledValues[i] - expected) <= 1e-6 * max(1, abs(expected)))
        }
        let packed = try Weight(packed: RoundToNearest.quantize(original, rows: stored.outFeatures, columns: columns, scheme: .init(bits: 4, symmetric: true, granularity: .channel)))
        #expect(throws: EngineError.self) { try packed.scaled(scaling) }
    }

    @Test func aQuantizationStartsFromTheSmoothedFormItWasMadeFrom() throws {
        let model = try BlockRunnerTests.model("llama")
        let store = model.weights
        let entry = model.names.required("layer.0.attn.q")
        let smoothed = try store.weight(entry.weight).scaled(ChannelScaling(input: Self.factors(32, seed: 5)))
        try store.set(entry.weight, smoothed)
        let scheme = QuantizationScheme(bits: 4, symmetric: true, granularity: .group(16))
        _ = try ModelQuantizer.roundToNearest(store, [entry], scheme: scheme)
        _ = try ModelQuantizer.roundToNearest(store, [entry], scheme: scheme.with(clip: .mse))
        #expect(try store.weight(entry.weight).isQuantized)
        #expect(try store.origin(entry.weight).floats() == smoothed.floats())
        #expect(try ModelQuantizer.startingValues(store, entry.weight).values == ModelQuantizer.outInValues(smoothed))
    }

    @Test func float8CodesRoundToTheNearestValue() {
        #expect(Float8.e4m3Values[0x7E] == 448)
        #expect(Float8.e4m3Values[0x38] == 1)
        #expect(Float8.e4m3Values[0x01] == Float(pow(2.0, -9.0)))
        #expect(Float8.e4m3Values[0x7F].isNaN)
        for code in 0 ..< 256 where code & 0x7F != 0x7F {
            let value = Float8.e4m3Values[code]
            let back = Float8.e4m3Code(value)
            #expect(Float8.e4m3Values[Int(back)] == value, "code \(code)")
        }
        let finite = (0 ..< 256).compactMap { Float8.e4m3Values[$0].isNaN ? nil : Float8.e4m3Values[$0] }
        for value in stride(from: Float(-500), through: 500, by: 0.37) + [1.0625, 0.0009765625 * 1.5] {
            let chosen = Float8.e4m3Values[Int(Float8.e4m3Code(value))]
            let target = min(max(value, -448), 448)
            let best = finite.map { abs($0 - target) }.min()!
            #expect(abs(chosen - target) == best, "\(value) → \(chosen)")
        }
    }

    @Test func activationQuantizationIsWithinHalfAStepPerToken() {
        let x = Activations(rows: 3, cols: 8, data: QuantizationTests.matrix(rows: 3, columns: 8, seed: 9).map { $0 * 5 })
        let y = ActivationQuantization(bits: 4, mode: .token).apply(x)
        for r in 0 ..< 3 {
            let row = x.data[r * 8 ..< (r + 1) * 8]
            let step = row.map { abs($0) }.max()! / 7
            for c in 0 ..< 8 {
                #expect(abs(y.data[r * 8 + c] - x.data[r * 8 + c]) <= step / 2 + 1e-6)
                let code = y.data[r * 8 + c] / step
                #expect(abs(code - code.rounded()) < 1e-3)
            }
        }
        // A static scale clips what lies beyond its range.
        let clipped = ActivationQuantization(bits: 8, mode: .static(scale: 0.01)).apply(Activations(rows: 1, cols: 2, data: [5, -0.5]))
        #expect(clipped.data == [1.27, -0.5])
    }
}
