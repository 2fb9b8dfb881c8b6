import Foundation

/// How far a change moved a model's outputs on a probe's windows, as sums over the scored
/// tokens (so that the measures of several groups of windows add up). A causal language model
/// is measured on its next-token predictions; an encoder, which has none, on the direction of
/// its output rows (the hidden states its sentence embeddings average).
package struct PredictionDamage: Sendable, Equatable {
    /// Σ KL(reference ‖ changed) over the scored tokens, in nats; for an encoder
    /// Σ (1 − cos(reference row, changed row)) over the output rows.
    package var divergenceSum = 0.0
    /// Σ −log q(next token) of the changed model, and of the reference (0 for an encoder).
    package var nllSum = 0.0
    package var referenceNLLSum = 0.0
    /// Tokens scored.
    package var tokens = 0

    package init() {}

    /// Mean KL(reference ‖ changed) per scored token; for an encoder, the mean 1 − cosine.
    package var meanDivergence: Double { tokens > 0 ? divergenceSum / Double(tokens) : 0 }
    package var perplexity: Double { Foundation.exp(tokens > 0 ? nllSum / Double(tokens) : 0) }
    package var referencePerplexity: Double { Foundation.exp(tokens > 0 ? referenceNLLSum / Double(tokens) : 0) }

    package static func + (a: PredictionDamage, b: PredictionDamage) -> PredictionDamage {
        var sum = a
        sum.divergenceSum += b.divergenceSum
        sum.nllSum += b.nllSum
        sum.referenceNLLSum += b.referenceNLLSum
        sum.tokens += b.tokens
        return sum
    }
}

/// Measures what changes to a model's weights do to its next-token predictions (an encoder:
/// to its output rows) on a few windows, against the model as it was when the probe was made
/// (the reference).
///
/// Made once, a probe keeps each window's hidden states at the input of every block and the
/// reference's head statistics of every scored row, so that a change inside block b is
/// measured by running blocks b… only (a change to the last block costs one block and the
/// head). No reference logits are kept: with n the final-normed rows, c = head · n and
/// p̄ = Σᵢ pᵢ headᵢ the head row the reference expects,
///
///     KL(p ‖ q) = Σᵢ pᵢ (c_ref,ᵢ − c_q,ᵢ) + log Z_q − log Z_ref = p̄ · (n_ref − n_q) + log Z_q − log Z_ref,
///
/// exact, from two hidden-size vectors a token (9 MB for 2 windows of 512 tokens of SmolLM2
/// where the log-probabilities would take 200 MB); the first term is a small difference times
/// p̄, so an unchanged model measures 0 and a small change keeps its precision.
/// Row t of a window is scored on token t + 1, as `eval` scores a window. An encoder's rows are
/// all scored, by 1 − the cosine of each output row with the reference's (kept: the final
/// hidden states), which is quadratic in a small change as the KL divergence is.
package final class PredictionProbe {
    package let model: any BlockModel
    package let windows: [[Int]]
    let runner: BlockRunner
    /// `inputs[b][w]`: window w's hidden states at the input of block b; `inputs[blocks]` holds
    /// the final hidden states.
    private var inputs: [[Activations]] = []
    private var reference: [HeadStatistics] = []
    private let targets: [[Int]]

    /// Runs the windows through the model as it is now, keeping what later measures need.
    /// Windows run side by side, one per thread, when there are several.
    package init(
        model: any BlockModel, windows: [[Int]], conversions: ConversionCache = ConversionCache(budgetBytes: ConversionCache.evaluationBudget),
        isCancelled: () -> Bool = { false }
    ) throws {
        guard !windows.isEmpty, windows.allSatisfy({ $0.count >= 2 }) else {
            throw EngineError("a prediction probe needs windows of at least 2 tokens")
        }
        self.model = model
        self.windows = windows
        targets = model is any CausalLanguageModel ? windows.map { Array($0.dropFirst()) } : windows
        runner = BlockRunner(model: model, conversions: conversions, parallelSequences: windows.count > 1)
        var states = try runner.embed(windows)
        inputs = [states]
        for block in 0 ..< model.config.numHiddenLayers {
            if isCancelled() { throw EngineError.cancelled }
            try runner.run(block: block, &states)
            inputs.append(states)
        }
        let targets = targets
        if let causal = model as? any CausalLanguageModel {
            reference = try perWindow { w in
                try causal.headStatistics(Self.scoredRows(states[w]), targets: targets[w], expectations: true, conversions: runner.conversions)
            }
        }
    }

    /// Scored tokens per measure.
    package var tokens: Int { targets.reduce(0) { $0 + $1.count } }

    /// Bytes a probe holds per token of its windows: the states at every block's input and the
    /// final ones, the reference's normed rows and expected head rows.
    package static func bytesPerToken(_ config: ModelConfig) -> Int {
        (config.numHiddenLayers + 3) * config.hiddenSize * MemoryLayout<Float>.size
    }

    /// The damage of the weights as they are now against the reference, running the model from
    /// the input of block `block` (nil: from the embedding; the block count: the head only).
    /// Weights before that block must be as they were when the probe was made.
    package func measure(from block: Int?, isCancelled: @escaping () -> Bool = { false }) throws -> PredictionDamage {
        let blocks = model.config.numHiddenLayers
        precondition(block.map { (0 ... blocks).contains($0) } ?? true, "PredictionProbe: no block \(block ?? -1)")
        let parts = try perWindow { w -> PredictionDamage in
            var x: Activations
            if let block {
                x = inputs[block][w]
            } else {
                x = try model.embed(windows[w], pass: ForwardPass(conversions: runner.conversions))
            }
            for index in (block ?? 0) ..< blocks {
                if isCancelled() { throw EngineError.cancelled }
                try model.block(index, &x, pass: ForwardPass(conversions: runner.conversions))
            }
            guard let causal = model as? any CausalLanguageModel else { return Self.compareOutputs(inputs[blocks][w], x) }
            let now = try causal.headStatistics(Self.scoredRows(x), targets: targets[w], conversions: runner.conversions)
            return Self.compare(reference[w], now)
        }
        return parts.reduce(PredictionDamage(), +)
    }

    /// Sums over the rows of KL(reference ‖ now) and both NLLs of the targets.
    static func compare(_ reference: HeadStatistics, _ now: HeadStatistics) -> PredictionDamage {
        var damage = PredictionDamage()
        let width = now.normed.cols
        let rows = now.normed.rows
        guard let expected = reference.expectedHeadRows else { preconditionFailure("the reference needs expected head rows") }
        expected.data.withUnsafeBufferPointer { p in
            reference.normed.data.withUnsafeBufferPointer { r in
                now.normed.data.withUnsafeBufferPointer { q in
                    for row in 0 ..< rows {
                        var dot = 0.0
                        let offset = row * width
                        for c in offset ..< offset + width { dot += Double(p[c]) * (Double(r[c]) - Double(q[c])) }
                        damage.divergenceSum += dot + now.logNormalizers[row] - reference.logNormalizers[row]
                        damage.nllSum += now.logNormalizers[row] - now.targetLogits[row]
                        damage.referenceNLLSum += reference.logNormalizers[row] - reference.targetLogits[row]
                    }
                }
            }
        }
        damage.tokens = rows
        return damage
    }

    /// Σ over the rows of 1 − cos(reference row, row now).
    static func compareOutputs(_ reference: Activations, _ now: Activations) -> PredictionDamage {
        var damage = PredictionDamage()
        let width = now.cols
        reference.data.withUnsafeBufferPointer { r in
            now.data.withUnsafeBufferPointer { q in
                for row in 0 ..< now.rows {
                    var dot = 0.0, rr = 0.0, qq = 0.0
                    for c in row * width ..< (row + 1) * width {
                        let a = Double(r[c]), b = Double(q[c])
                        dot += a * b
                        rr += a * a
                        qq += b * b
                    }
                    // Rows of zeros on both sides are the same; a zero row against another is as far as can be.
                    let cosine = rr > 0 && qq > 0 ? dot / (rr * qq).squareRoot() : (rr == qq ? 1 : 0)
                    damage.divergenceSum += 1 - cosine
                }
            }
        }
        damage.tokens = now.rows
        return damage
    }

    /// Every row but the last: row t is scored on token t + 1.
    static func scoredRows(_ states: Activations) -> Activations {
        Activations(rows: states.rows - 1, cols: states.cols, data: Array(states.data[0 ..< (states.rows - 1) * states.cols]))
    }

    /// `body` for each window, side by side where the runner runs sequences so; results in order.
    private func perWindow<T>(_ body: (Int) throws -> T) throws -> [T] {
        var results = [T?](repeating: nil, count: windows.count)
        try results.withUnsafeMutableBufferPointer { buffer in
            let shared = SharedResults(base: buffer.baseAddress!)
            try runner.forEachSequence(windows.count) { w in shared.base[w] = try body(w) }
        }
        return results.map { $0! }
    }
}

/// Results written by worker threads that each own their indices.
private struct SharedResults<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T?>
}

/// Sensitivity analysis: the damage each of several changes to a model does made alone, the
/// rest of the model left as it is.
package enum Sensitivity {
    /// One change to measure: the weights it gives some tensors, and the block to run the
    /// model from (nil: from the embedding; the block count: the head only).
    package struct Change: Sendable {
        package var name: String
        package var weights: [(tensor: String, weight: Weight)]
        package var firstBlock: Int?

        package init(name: String, weights: [(tensor: String, weight: Weight)], firstBlock: Int?) {
            self.name = name
            self.weights = weights
            self.firstBlock = firstBlock
        }
    }

    /// Bytes of the windows' states one probe may hold; more windows are measured in groups.
    package static let probeBudgetBytes = 512 << 20

    /// The block to run a model from when `entries` change: the first block among them, nil
    /// when the embedding changes, the block count when only the head does.
    package static func firstBlock(of entries: [LayerNames.Entry], blocks: Int) -> Int? {
        var first = blocks
        for entry in entries {
            switch entry.kind {
            case .embedding: return nil
            case .head: continue
            case .linear, .norm:
                // A norm or linear layer outside the blocks (a final norm) is read after them.
                first = min(first, CalibratedQuantizer.blockIndex(entry.canonical) ?? blocks)
            }
        }
        return first
    }

    /// The damage of each change made alone, against the model as it is now, on `windows`
    /// (measured in groups of windows that fit `probeBudgetBytes`). The weights are put back
    /// after each change, and when this throws (Ctrl-C included). `progress` gets (changes
    /// measured, changes × groups).
    package static func measure(
        _ model: any BlockModel, changes: [Change], windows: [[Int]], probeBudgetBytes: Int = Sensitivity.probeBudgetBytes,
        progress: ((Int, Int) -> Void)? = nil, isCancelled: @escaping () -> Bool = { false }
    ) throws -> [PredictionDamage] {
        let store = model.weights
        let before = store.snapshot()
        defer { store.restore(before) }
        let perToken = PredictionProbe.bytesPerToken(model.config)
        var groups: [[[Int]]] = []
        var tokens = 0
        for window in windows {
            if groups.isEmpty || (tokens + window.count) * perToken > probeBudgetBytes {
                groups.append([])
                tokens = 0
            }
            groups[groups.count - 1].append(window)
            tokens += window.count
        }
        var damages = [PredictionDamage](repeating: PredictionDamage(), count: changes.count)
        let conversions = ConversionCache(budgetBytes: ConversionCache.evaluationBudget)
        for (g, group) in groups.enumerated() {
            let probe = try PredictionProbe(model: model, windows: group, conversions: conversions, isCancelled: isCancelled)
            for (index, change) in changes.enumerated() {
                if isCancelled() { throw EngineError.cancelled }
                for (tensor, weight) in change.weights { try store.set(tensor, weight) }
                damages[index] = damages[index] + (try probe.measure(from: change.firstBlock, isCancelled: isCancelled))
                store.restore(before)
                progress?(g * changes.count + index + 1, groups.count * changes.count)
            }
        }
        return damages
    }
}
