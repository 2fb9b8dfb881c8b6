import Foundation

/// The update rule of a training run.
package enum OptimizerKind: String, Sendable {
    /// Adam with decoupled weight decay (β₁ 0.9, β₂ 0.999, ε 1e-8), as torch.optim.AdamW.
    case adamw
    /// Plain stochastic gradient descent (weight decay added to the gradient).
    case sgd
}

/// How a training run goes.
package struct TrainingOptions: Sendable {
    package var steps = 200
    package var learningRate = 1e-4
    package var optimizer = OptimizerKind.adamw
    package var weightDecay = 0.0
    /// λ of λ Σ|w| over the learning linear weights (the seed's L1 regularisation).
    package var l1 = 0.0
    /// λ of λ Σw² over the learning linear weights.
    package var l2 = 0.0
    /// Steps of linear warm-up before the cosine decay (to a tenth of the rate at the end).
    package var warmup = 10
    /// The gradient's global norm is clipped to this (0: no clipping), as transformers' Trainer does at 1.
    package var clipNorm = 1.0

    package init() {}

    /// The learning rate at step `step` (0-based) of `steps`.
    package func rate(at step: Int) -> Double {
        if warmup > 0, step < warmup { return learningRate * Double(step + 1) / Double(warmup) }
        let span = max(1, steps - warmup)
        let progress = min(1, Double(step - warmup) / Double(span))
        return learningRate * (0.1 + 0.9 * 0.5 * (1 + cos(Double.pi * progress)))
    }
}

/// Updates parameters from their gradients: AdamW or SGD, with L1/L2 terms, weight decay and
/// global-norm clipping.
package final class Optimizer {
    package let options: TrainingOptions
    private var step = 0

    package init(options: TrainingOptions) { self.options = options }

    /// The regularisation penalty λ₁Σ|w| + λ₂Σw² over the learning linear weights (reported
    /// beside the task loss).
    package func penalty(_ parameters: [TrainableParameter]) -> Double {
        guard options.l1 > 0 || options.l2 > 0 else { return 0 }
        var total = 0.0
        for p in parameters where p.learnsValues && p.shape.count == 2 {
            var a = 0.0
            var s = 0.0
            for w in p.master {
                a += Double(abs(w))
                s += Double(w * w)
            }
            total += options.l1 * a + options.l2 * s
        }
        return total
    }

    /// The global norm of the gradients (after the regularisation terms are added).
    package func gradientNorm(_ parameters: [TrainableParameter]) -> Double {
        var total = 0.0
        for p in parameters {
            for g in p.grad { total += Double(g * g) }
            for g in p.scaleGrad { total += Double(g * g) }
        }
        return total.squareRoot()
    }

    /// Adds the regularisation gradients, clips, and takes one step at `rate`.
    /// Returns the gradient norm before clipping.
    @discardableResult
    package func update(_ parameters: [TrainableParameter], rate: Double) -> Double {
        step += 1
        let l1 = Float(options.l1)
        let l2 = Float(options.l2)
        if l1 > 0 || l2 > 0 {
            for p in parameters where p.learnsValues && p.shape.count == 2 {
                for i in 0 ..< p.grad.count {
                    let w = p.master[i]
                    p.grad[i] += l1 * (w > 0 ? 1 : w < 0 ? -1 : 0) + 2 * l2 * w
                }
                if let mask = p.mask { p.grad.withUnsafeMutableBufferPointer { mask.apply(to: $0.baseAddress!, first: 0, count: $0.count) } }
            }
        }
        let norm = gradientNorm(parameters)
        let clip: Float = options.clipNorm > 0 && norm > options.clipNorm ? Float(options.clipNorm / norm) : 1
        let lr = Float(rate)
        let decay = Float(options.weightDecay)
        for p in parameters {
            if p.learnsValues { apply(&p.master, &p.grad, &p.moments, &p.squares, lr: lr, decay: decay, clip: clip) }
            if p.learnsScales, var grid = p.grid {
                apply(&grid.scales, &p.scaleGrad, &p.scaleMoments, &p.scaleSquares, lr: lr, decay: 0, clip: clip)
                // A scale stays positive: a step that would take it through zero leaves its magnitude (plus 1e-8).
                for i in 0 ..< grid.scales.count where grid.scales[i] <= 0 { grid.scales[i] = abs(grid.scales[i]) + 1e-8 }
                p.grid = grid
            }
            if let mask = p.mask { p.master.withUnsafeMutableBufferPointer { mask.apply(to: $0.baseAddress!, first: 0, count: $0.count) } }
            p.refresh()
        }
        return norm
    }

    private func apply(_ values: inout [Float], _ grad: inout [Float], _ m: inout [Float], _ v: inout [Float], lr: Float, decay: Float, clip: Float) {
        switch options.optimizer {
        case .sgd:
            for i in 0 ..< values.count { values[i] -= lr * (clip * grad[i] + decay * values[i]) }
        case .adamw:
            if m.isEmpty {
                m = [Float](repeating: 0, count: values.count)
                v = m
            }
            let beta1: Float = 0.9
            let beta2: Float = 0.999
            let correction1 = 1 - Float(pow(0.9, Double(step)))
            let correction2 = 1 - Float(pow(0.999, Double(step)))
            let stepSize = lr / correction1
            let root2 = correction2.squareRoot()
            values.withUnsafeMutableBufferPointer { w in
                grad.withUnsafeBufferPointer { g in
                    m.withUnsafeMutableBufferPointer { m in
                        v.withUnsafeMutableBufferPointer { v in
                            let (wb, gb, mb, vb) = (w.baseAddress!, g.baseAddress!, m.baseAddress!, v.baseAddress!)
                            parallelFor(w.count, chunks: w.count >= 1 << 16 ? ThreadCount.configured : 1) { range in
                                for i in range {
                                    let gi = clip * gb[i]
                                    mb[i] = beta1 * mb[i] + (1 - beta1) * gi
                                    vb[i] = beta2 * vb[i] + (1 - beta2) * gi * gi
                                    wb[i] *= 1 - lr * decay
                                    wb[i] -= stepSize * mb[i] / (vb[i].squareRoot() / root2 + 1e-8)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One step of a training run, as recorded.
package struct TrainingStep: Sendable {
    package var step: Int
    package var loss: Double
    package var rate: Double
    package var gradientNorm: Double
    /// Seconds the step took (forward, backward, update).
    package var seconds: Double = 0
}

/// How a training run ended.
package struct TrainingOutcome: Sendable {
    package var steps: [TrainingStep] = []
    package var tokens = 0
    package var seconds = 0.0
    /// Set when the run stopped before its last step: Ctrl-C, or a loss that was not finite.
    package var stopped: String?

    package init() {}
}

/// End-to-end training (`finetune`): batches of windows, forward, backward, an optimizer step.
package enum Finetuner {
    /// The share of the learning linear weights whose magnitude is below `threshold` (what L1
    /// regularisation raises).
    package static func nearZeroShare(_ model: TrainingModel, threshold: Float = 1e-3) -> Double {
        var small = 0
        var total = 0
        for p in model.trainable where p.learnsValues && p.shape.count == 2 && !p.name.contains("embed") {
            total += p.count
            for w in p.master where abs(w) < threshold { small += 1 }
        }
        return total == 0 ? 0 : Double(small) / Double(total)
    }

    /// Trains `model` for `options.steps` steps on `batches(step)`; `teacher(batch)` gives the
    /// teacher's logits for distillation. A loss that is not finite stops the run with the
    /// parameters of the last step whose loss was finite; Ctrl-C stops it after the current step.
    package static func run(
        _ model: TrainingModel, loss: TrainingLoss, options: TrainingOptions, batches: (Int) -> [[Int]],
        teacher: (([[Int]]) throws -> [Float])? = nil, progress: ((TrainingStep, Int, Double) -> Void)? = nil,
        isCancelled: () -> Bool = { false }
    ) throws -> TrainingOutcome {
        Memory.keepFreedMemory()
        let optimizer = Optimizer(options: options)
        let parameters = model.trainable
        var outcome = TrainingOutcome()
        let started = Date()
        // The learning values before the last update: what a non-finite loss goes back to.
        var previous: [[Float]] = []
        var previousScales: [[Float]?] = []
        for step in 0 ..< options.steps {
            if isCancelled() {
                outcome.stopped = "stopped by Ctrl-C after step \(step)"
                break
            }
            let stepStarted = Date()
            let batch = batches(step)
            let teacherLogits = try teacher?(batch)
            for p in parameters { p.zeroGrad() }
            // Ctrl-C is honoured between steps: a step once begun completes.
            let taskLoss = try model.lossAndGradients(batch, loss: loss, teacherLogits: teacherLogits)
            let total = taskLoss + optimizer.penalty(parameters)
            for p in parameters { p.finishGradient() }
            guard total.isFinite, optimizer.gradientNorm(parameters).isFinite else {
                if !previous.isEmpty {
                    for (index, p) in parameters.enumerated() {
                        p.master = previous[index]
                        if let scales = previousScales[index] { p.grid?.scales = scales }
                        p.refresh()
                    }
                }
                let what = total.isFinite ? "the gradient became \(optimizer.gradientNorm(parameters))" : "the loss became \(total)"
                outcome.stopped = step == 0
                    ? "\(what) at step 1: nothing was trained"
                    : "\(what) at step \(step + 1); the weights went back to those step \(step) computed with, whose loss was finite"
                break
            }
            previous = parameters.map(\.master)
            previousScales = parameters.map { $0.learnsScales ? $0.grid?.scales : nil }
            let rate = options.rate(at: step)
            let norm = optimizer.update(parameters, rate: rate)
            let record = TrainingStep(step: step + 1, loss: total, rate: rate, gradientNorm: norm, seconds: Date().timeIntervalSince(stepStarted))
            outcome.steps.append(record)
            outcome.tokens += batch.reduce(0) { $0 + $1.count }
            outcome.seconds = Date().timeIntervalSince(started)
            progress?(record, options.steps, Double(outcome.tokens) / max(outcome.seconds, 1e-9))
        }
        outcome.seconds = Date().timeIntervalSince(started)
        return outcome
    }

    /// Writes the trained parameters into the model's weights: quantized layers packed again
    /// on their grid (with the trained values as what a later quantization starts from),
    /// others as dense fp32.
    package static func commit(_ model: TrainingModel, to weights: WeightStore) throws {
        for p in model.trainable {
            if p.grid != nil { try weights.set(p.name, Weight(dense: p.master, shape: p.shape, mask: p.mask)) }
            try weights.set(p.name, p.weight())
        }
    }
}
