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
    /// Runs both models over the windows of `tokens` and compares their distributions.
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
        var processed = 0
        let windows = EvaluationWindows(tokens: tokens.count, context: protocolInfo.context, stride: protocolInfo.stride)
        let totalWork = windows.reduce(0) { $0 + $1.range.count }
        for window in windows {
            if isCancelled() { throw EngineError("cancelled") }
            let input = Array(tokens[window.range])
            let base = try reference.forward(input)
            let current = try model.forward(input)
            for position in window.scored {
                let row = position - 1 - window.range.lowerBound
                let compared = compare(base: base, current: current, row: row, target: tokens[position])
                divergences.append(compared.kld)
                if compared.sameTop1 { agree += 1 }
                nll += compared.nll
                baseNLL += compared.baseNLL
            }
            processed += window.range.count
            progress?(processed, totalWork)
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
        return base.data.withUnsafeBufferPointer { b in
            current.data.withUnsafeBufferPointer { c in
                var maxB = -Float.infinity
                var maxC = -Float.infinity
                var argB = 0
                var argC = 0
                for i in 0 ..< n {
                    if b[offset + i] > maxB { maxB = b[offset + i]; argB = i }
                    if c[offset + i] > maxC { maxC = c[offset + i]; argC = i }
                }
                var sumB = 0.0
                var sumC = 0.0
                for i in 0 ..< n {
                    sumB += Foundation.exp(Double(b[offset + i] - maxB))
                    sumC += Foundation.exp(Double(c[offset + i] - maxC))
                }
                let logZB = Foundation.log(sumB) + Double(maxB)
                let logZC = Foundation.log(sumC) + Double(maxC)
                var kld = 0.0
                for i in 0 ..< n {
                    let logP = Double(b[offset + i]) - logZB
                    let logQ = Double(c[offset + i]) - logZC
                    kld += Foundation.exp(logP) * (logP - logQ)
                }
                return (max(kld, 0), argB == argC, logZC - Double(c[offset + target]), logZB - Double(b[offset + target]))
            }
        }
    }
}
