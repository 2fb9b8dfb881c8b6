import Foundation

/// How a perplexity was measured; recorded with every number so that it can be reproduced
/// with transformers or llama.cpp.
package struct PerplexityProtocol: Sendable, Equatable, Hashable {
    /// The text's name (a registry name or a path).
    package var text: String
    /// Token ids taken from the start of the text (after the optional BOS).
    package var tokens: Int
    /// Window length.
    package var context: Int
    /// Distance between window starts; equal to `context` for non-overlapping windows.
    package var stride: Int
    /// Whether a BOS token was put before the text.
    package var bos: Bool

    package init(text: String, tokens: Int, context: Int, stride: Int, bos: Bool) {
        self.text = text
        self.tokens = tokens
        self.context = context
        self.stride = stride
        self.bos = bos
    }
}

/// A perplexity and how it was measured.
package struct PerplexityResult: Sendable {
    package var measuredWith: PerplexityProtocol
    /// exp(mean negative log-likelihood) over the scored tokens.
    package var perplexity: Double
    /// The mean negative log-likelihood in nats.
    package var meanNLL: Double
    /// Tokens whose prediction was scored.
    package var scored: Int
    /// Tokens run through the model per second of wall time.
    package var tokensPerSecond: Double
}

/// The windows a protocol scores: each is a range of token positions, and the positions
/// inside it whose next-token prediction counts.
package struct EvaluationWindows: Sequence {
    package struct Window: Sendable, Equatable {
        /// Positions fed to the model.
        package var range: Range<Int>
        /// Positions (in the whole sequence) whose token is scored, predicted from what precedes it.
        package var scored: Range<Int>
    }

    let count: Int
    let context: Int
    let stride: Int

    /// Non-overlapping windows when stride == context: every token but the first of a window is
    /// scored. With a shorter stride (transformers' sliding window), each window scores only the
    /// tokens no earlier window scored.
    package init(tokens count: Int, context: Int, stride: Int) {
        self.count = count
        self.context = context
        self.stride = stride
    }

    package func makeIterator() -> AnyIterator<Window> {
        var start = 0
        var scoredUpTo = 0
        return AnyIterator {
            guard start < count - 1 else { return nil }
            let end = Swift.min(start + context, count)
            let firstScored = Swift.max(start + 1, scoredUpTo)
            let window = Window(range: start ..< end, scored: firstScored ..< end)
            scoredUpTo = end
            if end == count { start = count } else { start += stride }
            return window
        }
    }
}

/// Perplexity of a causal language model over token ids.
package enum Perplexity {
    /// Runs every window through `model` and scores it. `progress` gets (tokens done, total);
    /// `isCancelled` is checked between windows. `blockwise` runs all windows through one
    /// block before the next (for a reference model whose weights are converted per use).
    package static func evaluate(
        model: CausalLanguageModel, tokens: [Int], measuredWith protocolInfo: PerplexityProtocol,
        blockwise: Bool = false, progress: ((Int, Int) -> Void)? = nil, isCancelled: () -> Bool = { false }
    ) throws -> PerplexityResult {
        guard tokens.count >= 2 else {
            throw EngineError(subject: protocolInfo.text, "has \(tokens.count) token(s); perplexity needs at least 2")
        }
        let started = Date()
        var totalNLL = 0.0
        var scored = 0
        var processed = 0
        let windows = Array(EvaluationWindows(tokens: tokens.count, context: protocolInfo.context, stride: protocolInfo.stride))
        let totalWork = windows.reduce(0) { $0 + $1.range.count }
        func score(_ window: EvaluationWindows.Window, _ logits: Activations) {
            for position in window.scored {
                let row = position - 1 - window.range.lowerBound
                totalNLL += negativeLogLikelihood(logits, row: row, target: tokens[position])
                scored += 1
            }
            processed += window.range.count
            progress?(processed, totalWork)
        }
        let inputs = windows.map { Array(tokens[$0.range]) }
        if blockwise {
            try BlockRunner(model: model).forEachGroup(inputs, isCancelled: isCancelled) { first, hidden in
                for (offset, states) in hidden.enumerated() {
                    if isCancelled() { throw EngineError.cancelled }
                    score(windows[first + offset], try model.logits(states))
                }
            }
        } else {
            for (window, input) in zip(windows, inputs) {
                if isCancelled() { throw EngineError.cancelled }
                score(window, try model.forward(input, isCancelled: isCancelled))
            }
        }
        let mean = totalNLL / Double(max(scored, 1))
        let seconds = Date().timeIntervalSince(started)
        return PerplexityResult(
            measuredWith: protocolInfo, perplexity: Foundation.exp(mean), meanNLL: mean, scored: scored,
            tokensPerSecond: seconds > 0 ? Double(processed) / seconds : 0)
    }

    /// -log softmax(logits[row])[target], computed in double precision.
    package static func negativeLogLikelihood(_ logits: Activations, row: Int, target: Int) -> Double {
        logits.data.withUnsafeBufferPointer { p in
            let start = p.baseAddress! + row * logits.cols
            let maximum = FastMath.maximum(start, count: logits.cols)
            let sum = FastMath.sumExpShifted(start, count: logits.cols, shift: maximum)
            return Foundation.log(sum) + Double(maximum) - Double(start[target])
        }
    }
}
