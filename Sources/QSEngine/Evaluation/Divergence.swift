import Foundation

/// How far a compressed model's next-token distributions are from the original's, on the same
/// windows of the same text: llama.cpp's `--kl-divergence` figures.
package struct DivergenceResult: Sendable {
    package var measuredWith: PerplexityProtocol
    /// Mean of KL(original ‖ compressed) over scored tokens, in nats.
    package var meanKLD: Double
    /// 99th percentile of the per-token KL divergence.
    package var p99KLD: Double
    /// Largest per-token KL divergence.
    package var maxKLD: Double
    /// Share of scored tokens whose most likely next token is the same in both models.
    package var top1Agreement: Double
    package var basePerplexity: Double
    package var perplexity: Double
    /// perplexity / basePerplexity.
    package var perplexityRatio: Double { perplexity / basePerplexity }
    package var scored: Int
}

/// KL divergence of a model against a reference model.
package enum Divergence {
    /// Runs both models over the windows of `tokens` and compares their distributions. Both run
    /// block by block over each group of windows (their weights converted once per block, never
    /// held whole), then each window's scored rows are compared.
    package static func evaluate(
        model: CausalLanguageModel, reference: CausalLanguageModel, tokens: [Int],
        measuredWith protocolInfo: PerplexityProtocol, progress: ((Int, Int) -> Void)? = nil,
        isCancelled: () -> Bool = { false }
    ) throws -> DivergenceResult {
        guard tokens.count >= 2 else {
            throw EngineError(subject: protocolInfo.text, "has \(tokens.count) token(s); KL divergence needs at least 2")
        }
        var divergences: [Double] = []
        var agree = 0
        var nll = 0.0
        var baseNLL = 0.0
        let windows = Array(EvaluationWindows(tokens: tokens.count, context: protocolInfo.context, stride: protocolInfo.stride))
        let totalWork = windows.reduce(0) { $0 + $1.range.count }
        let inputs = windows.map { Array(tokens[$0.range]) }
        let referenceRunner = BlockRunner(model: reference)
        let modelRunner = BlockRunner(model: model)
        try referenceRunner.forEachGroup(
            inputs, progress: { progress?(Int($0 * Double(totalWork)), totalWork) }, isCancelled: isCancelled
        ) { first, referenceHidden in
            let hidden = try modelRunner.runAll(Array(inputs[first ..< first + referenceHidden.count]), isCancelled: isCancelled)
            for offset in referenceHidden.indices {
                let window = windows[first + offset]
                if isCancelled() { throw EngineError.cancelled }
                let (baseRows, targets) = Perplexity.scoredRows(window, of: referenceHidden[offset], tokens: tokens)
                let (rows, _) = Perplexity.scoredRows(window, of: hidden[offset], tokens: tokens)
                let base = try reference.logits(baseRows, conversions: referenceRunner.conversions)
                let current = try model.logits(rows, conversions: modelRunner.conversions)
                for (row, target) in targets.enumerated() {
                    let compared = compare(base: base, current: current, row: row, target: target)
                    divergences.append(compared.kld)
                    if compared.sameTop1 { agree += 1 }
                    nll += compared.nll
                    baseNLL += compared.baseNLL
                }
            }
        }
        guard !divergences.isEmpty else {
            throw EngineError(subject: protocolInfo.text, "no token was scored (ctx \(protocolInfo.context), \(tokens.count) tokens): a KL divergence needs at least one")
        }
        let count = Double(divergences.count)
        let sorted = divergences.sorted()
        let p99Index = min(sorted.count - 1, Int((0.99 * Double(sorted.count - 1)).rounded()))
        return DivergenceResult(
            measuredWith: protocolInfo, meanKLD: divergences.reduce(0, +) / count, p99KLD: sorted[p99Index],
            maxKLD: sorted.last ?? 0, top1Agreement: Double(agree) / count,
            basePerplexity: Foundation.exp(baseNLL / count), perplexity: Foundation.exp(nll / count),
            scored: divergences.count)
    }

    /// KL(base ‖ current) of one row, whether the argmaxes agree, and both NLLs of `target`.
    static func compare(base: Activations, current: Activations, row: Int, target: Int)
        -> (kld: Double, sameTop1: Bool, nll: Double, baseNLL: Double)
    {
        let n = base.cols
        let offset = row * n
        var probabilities = [Float](repeating: 0, count: n)
        return base.data.withUnsafeBufferPointer { bp in
            current.data.withUnsafeBufferPointer { cp in
                probabilities.withUnsafeMutableBufferPointer { pp in
                    let b = bp.baseAddress! + offset
                    let c = cp.baseAddress! + offset
                    var argB = 0
                    var argC = 0
                    for i in 1 ..< n {
                        if b[i] > b[argB] { argB = i }
                        if c[i] > c[argC] { argC = i }
                    }
                    let logZB = Foundation.log(FastMath.sumExpShifted(b, count: n, shift: b[argB])) + Double(b[argB])
                    let logZC = Foundation.log(FastMath.sumExpShifted(c, count: n, shift: c[argC])) + Double(c[argC])
                    // p_i = e^(b_i - logZB); KL = Σ p_i ((b_i - logZB) - (c_i - logZC)).
                    pp.baseAddress!.update(from: b, count: n)
                    _ = FastMath.expShifted(pp.baseAddress!, count: n, shift: Float(logZB))
                    let shift = Float(logZC - logZB)
                    var kld: Float = 0
                    for i in 0 ..< n { kld += pp[i] * (b[i] - c[i] + shift) }
                    return (
                        Swift.max(Double(kld), 0), argB == argC, logZC - Double(c[target]), logZB - Double(b[target])
                    )
                }
            }
        }
    }
}
