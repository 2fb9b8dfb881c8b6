import Foundation
import QSTestSupport
import Testing
@testable import QSEngine

/// The backward passes against central finite differences on tiny shapes, and whole-model
/// gradients of the tiny llama, SmolLM2 and qwen2 models against PyTorch autograd
/// (scripts/reference/make_training_fixtures.py); fake quantization, masks and the training
/// loop on the tiny llama.
@Suite struct TrainingTests {
    static func random(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        return (0 ..< count).map { _ in Float.random(in: -1 ... 1, using: &generator) * scale }
    }

    static func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) } }

    /// Central differences of `loss` at every element of `values` (step h), beside `analytic`:
    /// the largest difference relative to the largest gradient.
    static func check(
        _ values: inout [Float], analytic: [Float], h: Float = 1e-2, _ loss: ([Float]) -> Double
    ) -> Double {
        var worst = 0.0
        var scale = 0.0
        for i in values.indices {
            let kept = values[i]
            values[i] = kept + h
            let up = loss(values)
            values[i] = kept - h
            let down = loss(values)
            values[i] = kept
            let numeric = (up - down) / Double(2 * h)
            worst = max(worst, abs(numeric - Double(analytic[i])))
            scale = max(scale, abs(numeric))
        }
        return worst / max(scale, 1e-12)
    }

    @Test func linearBackwardMatchesFiniteDifferences() {
        let (rows, inputs, out) = (3, 5, 4)
        var x = Self.random(rows * inputs, seed: 1)
        var w = Self.random(out * inputs, seed: 2)
        var b = Self.random(out, seed: 3)
        let r = Self.random(rows * out, seed: 4)
        func loss(_ x: [Float], _ w: [Float], _ b: [Float]) -> Double {
            Self.dot(Backward.linear(Activations(rows: rows, cols: inputs, data: x), weight: w, out: out, bias: b).data, r)
        }
        var dw = [Float](repeating: 0, count: w.count)
        var db = [Float](repeating: 0, count: out)
        let dx = dw.withUnsafeMutableBufferPointer { wg in
            db.withUnsafeMutableBufferPointer { bg in
                Backward.linear(
                    Activations(rows: rows, cols: out, data: r), x: Activations(rows: rows, cols: inputs, data: x), weight: w,
                    weightGrad: wg.baseAddress!, biasGrad: bg.baseAddress!)!
            }
        }
        let (w0, b0, x0) = (w, b, x)
        #expect(Self.check(&x, analytic: dx.data) { loss($0, w0, b0) } < 1e-3)
        #expect(Self.check(&w, analytic: dw) { loss(x0, $0, b0) } < 1e-3)
        #expect(Self.check(&b, analytic: db) { loss(x0, w0, $0) } < 1e-3)
    }

    @Test func normBackwardsMatchFiniteDifferences() {
        let (rows, n) = (3, 8)
        var x = Self.random(rows * n, seed: 5)
        var w = Self.random(n, seed: 6).map { $0 + 1.5 }
        var b = Self.random(n, seed: 7)
        let r = Self.random(rows * n, seed: 8)
        let dy = Activations(rows: rows, cols: n, data: r)
        // RMSNorm
        var dw = [Float](repeating: 0, count: n)
        let dx = dw.withUnsafeMutableBufferPointer {
            Backward.rmsNorm(dy, x: Activations(rows: rows, cols: n, data: x), weight: w, eps: 1e-5, weightGrad: $0.baseAddress!)
        }
        let (x0, w0, b0) = (x, w, b)
        func rms(_ x: [Float], _ w: [Float]) -> Double { Self.dot(Kernels.rmsNorm(Activations(rows: rows, cols: n, data: x), weight: w, eps: 1e-5).data, r) }
        #expect(Self.check(&x, analytic: dx.data, h: 1e-3) { rms($0, w0) } < 2e-3)
        #expect(Self.check(&w, analytic: dw, h: 1e-3) { rms(x0, $0) } < 2e-3)
        // LayerNorm
        var lw = [Float](repeating: 0, count: n)
        var lb = [Float](repeating: 0, count: n)
        let ldx = lw.withUnsafeMutableBufferPointer { wg in
            lb.withUnsafeMutableBufferPointer { bg in
                Backward.layerNorm(dy, x: Activations(rows: rows, cols: n, data: x0), weight: w0, eps: 1e-5, weightGrad: wg.baseAddress!, biasGrad: bg.baseAddress!)
            }
        }
        func layer(_ x: [Float], _ w: [Float], _ b: [Float]) -> Double {
            Self.dot(Kernels.layerNorm(Activations(rows: rows, cols: n, data: x), weight: w, bias: b, eps: 1e-5).data, r)
        }
        x = x0
        w = w0
        #expect(Self.check(&x, analytic: ldx.data, h: 1e-3) { layer($0, w0, b0) } < 2e-3)
        #expect(Self.check(&w, analytic: lw, h: 1e-3) { layer(x0, $0, b0) } < 2e-3)
        #expect(Self.check(&b, analytic: lb, h: 1e-3) { layer(x0, w0, $0) } < 2e-3)
    }

    @Test func rotaryAndAttentionBackwardsMatchFiniteDifferences() {
        let (length, sequences, heads, kvHeads, d) = (5, 2, 4, 2, 8)
        let rows = length * sequences
        var q = Self.random(rows * heads * d, seed: 9)
        var k = Self.random(rows * kvHeads * d, seed: 10)
        var v = Self.random(rows * kvHeads * d, seed: 11)
        let r = Self.random(rows * heads * d, seed: 12)
        let table = Kernels.RotaryTable(start: 0, rows: length, headDim: d, theta: 10000)
        func forward(_ q: [Float], _ k: [Float], _ v: [Float]) -> (Activations, Backward.AttentionState, Activations, Activations) {
            var qa = Activations(rows: rows, cols: heads * d, data: q)
            var ka = Activations(rows: rows, cols: kvHeads * d, data: k)
            Backward.rotary(&qa, heads: heads, headDim: d, length: length, table: table, inverse: false)
            Backward.rotary(&ka, heads: kvHeads, headDim: d, length: length, table: table, inverse: false)
            let (out, state) = Backward.attention(
                q: qa, k: ka, v: Activations(rows: rows, cols: kvHeads * d, data: v), heads: heads, kvHeads: kvHeads, headDim: d,
                length: length, causal: true)
            return (out, state, qa, ka)
        }
        let (_, state, qr, kr) = forward(q, k, v)
        var (dq, dk, dv) = Backward.attention(
            Activations(rows: rows, cols: heads * d, data: r), q: qr, k: kr, v: Activations(rows: rows, cols: kvHeads * d, data: v),
            state: state, heads: heads, kvHeads: kvHeads, headDim: d, length: length)
        Backward.rotary(&dq, heads: heads, headDim: d, length: length, table: table, inverse: true)
        Backward.rotary(&dk, heads: kvHeads, headDim: d, length: length, table: table, inverse: true)
        let (q0, k0, v0) = (q, k, v)
        #expect(Self.check(&q, analytic: dq.data, h: 1e-3) { Self.dot(forward($0, k0, v0).0.data, r) } < 2e-3)
        #expect(Self.check(&k, analytic: dk.data, h: 1e-3) { Self.dot(forward(q0, $0, v0).0.data, r) } < 2e-3)
        #expect(Self.check(&v, analytic: dv.data, h: 1e-3) { Self.dot(forward(q0, k0, $0).0.data, r) } < 2e-3)
        // Causal: the first row of each sequence sees only its own key.
        #expect(state.probabilities[0] == 1 && state.probabilities[1] == 0)
    }

    @Test(arguments: [Kernels.Activation.silu, .gelu, .geluTanh])
    func activationBackwardsMatchFiniteDifferences(activation: Kernels.Activation) {
        let n = 12
        var gate = Self.random(n, seed: 13, scale: 3)
        var up = Self.random(n, seed: 14)
        let r = Self.random(n, seed: 15)
        let (dg, du) = Backward.gatedActivation(
            Activations(rows: 1, cols: n, data: r), gate: Activations(rows: 1, cols: n, data: gate), up: Activations(rows: 1, cols: n, data: up),
            activation)
        func gated(_ g: [Float], _ u: [Float]) -> Double {
            var h = Activations(rows: 1, cols: n, data: g)
            Kernels.gatedActivate(&h, up: Activations(rows: 1, cols: n, data: u), activation)
            return Self.dot(h.data, r)
        }
        let (g0, u0) = (gate, up)
        #expect(Self.check(&gate, analytic: dg.data, h: 1e-3) { gated($0, u0) } < 2e-3)
        #expect(Self.check(&up, analytic: du.data, h: 1e-3) { gated(g0, $0) } < 2e-3)
        let plain = Backward.activation(Activations(rows: 1, cols: n, data: r), x: Activations(rows: 1, cols: n, data: g0), activation)
        gate = g0
        #expect(Self.check(&gate, analytic: plain.data, h: 1e-3) { g in Self.dot(g.map { activation.apply($0) }, r) } < 2e-3)
    }

    @Test func vocabularyLossesMatchFiniteDifferences() {
        let (rows, width, vocab) = (4, 6, 11)
        var normed = Self.random(rows * width, seed: 16)
        var head = Self.random(vocab * width, seed: 17)
        let targets = [3, -1, 10, 0]
        let teacher = Self.random(rows * vocab, seed: 18, scale: 3)
        for objectiveIndex in 0 ..< 2 {
            func loss(_ normed: [Float], _ head: [Float], grad: UnsafeMutablePointer<Float>?) -> (Double, Activations) {
                teacher.withUnsafeBufferPointer { t in
                    let objective: Backward.Objective = objectiveIndex == 0
                        ? .crossEntropy(targets: targets) : .distillation(teacherLogits: t.baseAddress!, temperature: 2)
                    let result = Backward.vocabularyLoss(
                        normed: Activations(rows: rows, cols: width, data: normed), head: head, vocab: vocab, objective: objective,
                        counted: objectiveIndex == 0 ? 3 : rows, headGrad: grad)
                    return (result.loss, result.dNormed)
                }
            }
            var dHead = [Float](repeating: 0, count: head.count)
            let dNormed = dHead.withUnsafeMutableBufferPointer { loss(normed, head, grad: $0.baseAddress!).1 }
            let (n0, h0) = (normed, head)
            #expect(Self.check(&normed, analytic: dNormed.data, h: 1e-3) { loss($0, h0, grad: nil).0 } < 2e-3)
            #expect(Self.check(&head, analytic: dHead, h: 1e-3) { loss(n0, $0, grad: nil).0 } < 2e-3)
        }
        // The row with no target contributes nothing to the cross entropy's gradient.
        let result = Backward.vocabularyLoss(
            normed: Activations(rows: rows, cols: width, data: normed), head: head, vocab: vocab, objective: .crossEntropy(targets: targets),
            counted: 3, headGrad: nil)
        #expect(result.dNormed.data[width ..< 2 * width].allSatisfy { $0 == 0 })
    }

    @Test func embeddingBackwardScattersRows() {
        var grad = [Float](repeating: 0, count: 4 * 2)
        grad.withUnsafeMutableBufferPointer {
            Backward.embedding(Activations(rows: 3, cols: 2, data: [1, 2, 3, 4, 5, 6]), ids: [2, 0, 2], into: $0.baseAddress!)
        }
        #expect(grad == [3, 4, 0, 0, 6, 8, 0, 0])
    }

    // MARK: Whole models against PyTorch

    struct Fixture: Decodable {
        struct Run: Decodable {
            var loss: Double
            var gradients: [String: [Float]]
        }
        var ids: [[Int]]
        var temperature: Double
        var teacher_logits: [Float]
        /// Absent for the encoder, which has no next-token loss.
        var ce: Run?
        var kd: Run
    }

    /// Every parameter's gradient of the whole model against PyTorch autograd: cross entropy and
    /// distillation for the causal models, the mean squared error of the last hidden states
    /// against a teacher's for BERT; activations kept and recomputed.
    @Test(arguments: ["llama", "smollm2", "qwen2", "gpt2", "bert"])
    func wholeModelGradientsMatchPyTorch(name: String) throws {
        let (checkpoint, _) = try ArchitectureParityTests.fixture(name)
        let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
            .appendingPathComponent("training").appendingPathComponent(name + ".json")
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        let model = try ModelLoader.model(for: checkpoint)
        let runs = [(fixture.ce, TrainingLoss.crossEntropy), (fixture.kd, .distillation(temperature: fixture.temperature))].compactMap { run, loss in run.map { ($0, loss) } }
        #expect(runs.count == (name == "bert" ? 1 : 2))
        for (run, loss) in runs {
            for memory in [ActivationMemory.keep, .recompute] {
                let training = try TrainingModel(model, selection: .all)
                training.memory = memory
                let value = try training.lossAndGradients(fixture.ids, loss: loss, teacherLogits: fixture.teacher_logits)
                #expect(abs(value - run.loss) / run.loss < 1e-5, "\(name) \(loss) loss \(value) against \(run.loss)")
                #expect(Set(run.gradients.keys) == Set(training.trainable.map(\.name)))
                for parameter in training.trainable {
                    var expected = try #require(run.gradients[parameter.name], "\(parameter.name)")
                    // GPT-2's Conv1D weights: PyTorch's gradient is in the stored in×out layout.
                    if parameter.layout == .inOut {
                        expected = TrainableParameter.transpose(expected, rows: parameter.shape[1], columns: parameter.shape[0])
                    }
                    let error = relativeError(parameter.grad, expected)
                    // A key's bias has no gradient in exact arithmetic (it adds the same to every
                    // score of a query): both sides are rounding, so compare absolutely.
                    let largest = zip(parameter.grad, expected).map { abs($0 - $1) }.max() ?? 0
                    #expect(error < 1e-4 || (parameter.name.contains("key.bias") && largest < 1e-6), "\(name) \(loss) \(memory) \(parameter.name): relative error \(error)")
                }
            }
        }
    }

    // MARK: Quantization-aware training and masks

    static func tinyLlama() throws -> BlockModel {
        try ModelLoader.model(for: try ArchitectureParityTests.fixture("llama").0)
    }

    @Test func fakeQuantizationStartsOnTheGridAndPacksBackToTheSameCodes() throws {
        let model = try Self.tinyLlama()
        let entries = model.names.entries.filter { if case .linear = $0.kind { true } else { false } }
        for (index, scheme) in [
            QuantizationScheme(bits: 4, symmetric: true, granularity: .group(16), clip: .none),
            QuantizationScheme(bits: 3, symmetric: false, granularity: .group(16), clip: .mse),
            QuantizationScheme(bits: 8, symmetric: true, granularity: .channel, clip: .none),
        ].enumerated() {
            let entry = entries[index]
            _ = try ModelQuantizer.roundToNearest(model.weights, [entry], scheme: scheme)
            let weight = try model.weights.weight(entry.weight)
            guard case .packed(let packed) = weight.form else { Issue.record("not packed"); continue }
            let parameter = try TrainableParameter(name: entry.weight, weight: weight, learnsValues: true, learnsScales: true)
            #expect(parameter.effective == (try weight.floats()), "\(scheme)")
            guard case .packed(let again) = try parameter.weight().form else { Issue.record("not packed"); continue }
            #expect(again.codes == packed.codes && again.scales == packed.scales, "\(scheme)")
            // From the values it was rounded from: the same codes, off the grid points.
            let continuous = try TrainableParameter(
                name: entry.weight, weight: weight, learnsValues: true, learnsScales: false, origin: try model.weights.origin(entry.weight))
            #expect(continuous.effective == (try weight.floats()), "\(scheme)")
            #expect(continuous.master == (try model.weights.original(entry.weight).floats()), "\(scheme)")
        }
    }

    /// Training moves the loss down, keeps pruned weights at zero and quantized layers on their
    /// grid, and gives back packed weights that save like any quantization.
    @Test func trainingLowersTheLossAndKeepsMasksAndGrids() throws {
        let model = try Self.tinyLlama()
        let entries = model.names.entries.filter { if case .linear = $0.kind { true } else { false } }
        _ = try Pruner.magnitude(model.weights, [entries[0]], amount: .fraction(0.5), global: false)
        _ = try ModelQuantizer.roundToNearest(model.weights, [entries[1]], scheme: QuantizationScheme(bits: 4, symmetric: true, granularity: .group(16), clip: .none))
        let training = try TrainingModel(model, selection: .all)
        var options = TrainingOptions()
        options.steps = 40
        options.learningRate = 3e-3
        options.warmup = 2
        let sequence = Array(0 ..< 16).map { ($0 * 7) % 96 }
        let outcome = try Finetuner.run(training, loss: .crossEntropy, options: options, batches: { _ in [sequence, sequence.reversed()] })
        let first = try #require(outcome.steps.first?.loss)
        let last = try #require(outcome.steps.last?.loss)
        #expect(outcome.steps.count == 40 && last < first * 0.5, "loss \(first) → \(last)")
        try Finetuner.commit(training, to: model.weights)
        let pruned = try model.weights.weight(entries[0].weight)
        let mask = try #require(pruned.mask)
        let values = try pruned.floats()
        #expect((0 ..< values.count).allSatisfy { mask.isKept($0) || values[$0] == 0 })
        #expect(try values != model.weights.original(entries[0].weight).floats())
        let quantized = try model.weights.weight(entries[1].weight)
        #expect(quantized.formName == "int4 g16")
        // Evaluating the committed model gives the loss the trained parameters give.
        let causal = try #require(model as? CausalLanguageModel)
        var x = try causal.embed(sequence, pass: ForwardPass())
        for i in 0 ..< causal.config.numHiddenLayers { try causal.block(i, &x, pass: ForwardPass()) }
        let nll = try causal.negativeLogLikelihoods(x, targets: Array(sequence.dropFirst()) + [-1])
        let evaluated = nll.reduce(0, +) / 15
        let trained = try training.lossAndGradients([sequence], loss: .crossEntropy)
        #expect(abs(evaluated - trained) < 1e-3 * trained, "\(evaluated) against \(trained)")
    }

    @Test func scalesAloneLearnWithTheCodesFixed() throws {
        let model = try Self.tinyLlama()
        let entries = model.names.entries.filter { if case .linear = $0.kind { true } else { false } }
        _ = try ModelQuantizer.roundToNearest(model.weights, entries, scheme: QuantizationScheme(bits: 3, symmetric: true, granularity: .group(16), clip: .none))
        let before = try entries.map { entry -> PackedWeight in
            guard case .packed(let p) = try model.weights.weight(entry.weight).form else { throw EngineError("not packed") }
            return p
        }
        let training = try TrainingModel(model, selection: .scales)
        #expect(training.trainable.allSatisfy { $0.grid == nil ? $0.name.hasSuffix("norm.weight") : $0.learnsScales && !$0.learnsValues })
        var options = TrainingOptions()
        options.steps = 10
        options.learningRate = 1e-3
        let sequence = Array(0 ..< 16).map { ($0 * 5) % 96 }
        let outcome = try Finetuner.run(training, loss: .crossEntropy, options: options, batches: { _ in [sequence] })
        #expect(try #require(outcome.steps.last?.loss) < (try #require(outcome.steps.first?.loss)))
        try Finetuner.commit(training, to: model.weights)
        for (entry, old) in zip(entries, before) {
            guard case .packed(let new) = try model.weights.weight(entry.weight).form else { Issue.record("not packed"); continue }
            #expect(new.codes == old.codes, "\(entry.canonical)")
            #expect(new.scales != old.scales, "\(entry.canonical)")
        }
    }

    @Test func aLossThatIsNotFiniteStopsWithTheLastGoodWeights() throws {
        let model = try Self.tinyLlama()
        let training = try TrainingModel(model, selection: .all)
        var options = TrainingOptions()
        options.steps = 5
        options.learningRate = 1
        options.optimizer = .sgd
        options.clipNorm = 0
        options.warmup = 0
        let sequence = Array(0 ..< 16)
        // Before the second step the weights are pushed to infinity (as a diverging update would).
        let originals = training.trainable.map(\.master)
        let outcome = try Finetuner.run(training, loss: .crossEntropy, options: options, batches: { step in
            if step == 1 { for p in training.trainable { p.master = p.master.map { $0 * 1e30 * 1e30 }; p.refresh() } }
            return [sequence]
        })
        #expect(outcome.steps.count == 1)
        // Back to the weights step 1 computed with: the originals.
        #expect(training.trainable.map(\.master) == originals)
        let stopped = try #require(outcome.stopped)
        #expect(stopped.contains("step 2"), "\(stopped)")
        #expect(training.trainable.allSatisfy { $0.master.allSatisfy(\.isFinite) })
    }
}
