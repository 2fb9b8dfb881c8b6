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
    /// Runs every window through `model` and scores it. Windows go through the model block by
    /// block in groups (each block's weights converted once per group), and each window's
    /// scored rows through the vocabulary a tile at a time. `progress` gets (tokens done,
    /// total); `isCancelled` is checked between blocks. Throws when no token is scored.
    package static func evaluate(
        model: CausalLanguageModel, tokens: [Int], measuredWith protocolInfo: PerplexityProtocol,
        progress: ((Int, Int) -> Void)? = nil, isCancelled: () -> Bool = { false }
    ) throws -> PerplexityResult {
        guard tokens.count >= 2 else {
            throw EngineError(subject: protocolInfo.text, "has \(tokens.count) token(s); perplexity needs at least 2")
        }
        let started = Date()
        var totalNLL = 0.0
        var scored = 0
        let windows = Array(EvaluationWindows(tokens: tokens.count, context: protocolInfo.context, stride: protocolInfo.stride))
        let totalWork = windows.reduce(0) { $0 + $1.range.count }
        let inputs = windows.map { Array(tokens[$0.range]) }
        let runner = BlockRunner(model: model)
        try runner.forEachGroup(
            inputs, progress: { progress?(Int($0 * Double(totalWork)), totalWork) }, isCancelled: isCancelled
        ) { first, hidden in
            for (offset, states) in hidden.enumerated() {
                if isCancelled() { throw EngineError.cancelled }
                let window = windows[first + offset]
                let (rows, targets) = scoredRows(window, of: states, tokens: tokens)
                let nll = try model.negativeLogLikelihoods(rows, targets: targets, conversions: runner.conversions)
                totalNLL += nll.reduce(0, +)
                scored += nll.count
            }
        }
        guard scored > 0 else {
            throw EngineError(subject: protocolInfo.text, "no token was scored (ctx \(protocolInfo.context), \(tokens.count) tokens): a perplexity needs at least one")
        }
        let mean = totalNLL / Double(scored)
        let seconds = Date().timeIntervalSince(started)
        return PerplexityResult(
            measuredWith: protocolInfo, perplexity: Foundation.exp(mean), meanNLL: mean, scored: scored,
            tokensPerSecond: seconds > 0 ? Double(totalWork) / seconds : 0)
    }

    /// The hidden states of the rows of `window` whose next token is scored, and those tokens.
    static func scoredRows(_ window: EvaluationWindows.Window, of states: Activations, tokens: [Int]) -> (Activations, [Int]) {
        let first = window.scored.lowerBound - 1 - window.range.lowerBound
        let count = window.scored.count
        let rows = Activations(
            rows: count, cols: states.cols, data: Array(states.data[first * states.cols ..< (first + count) * states.cols]))
        return (rows, Array(tokens[window.scored]))
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
