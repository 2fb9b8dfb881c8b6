import Foundation

/// A small seeded random number generator (SplitMix64), so that sampling with a seed gives
/// the same tokens on every run.
package struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    package init(seed: UInt64) { state = seed }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// How to pick each next token.
package struct SamplingOptions: Sendable {
    /// 0 picks the most likely token (greedy).
    package var temperature: Double = 0
    /// Sample among the k most likely tokens only (nil: all).
    package var topK: Int?
    package var seed: UInt64 = 0

    package init(temperature: Double = 0, topK: Int? = nil, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.seed = seed
    }
}

/// Timings of one generation.
package struct GenerationResult: Sendable {
    package var tokens: [Int]
    package var promptTokens: Int
    package var prefillSeconds: Double
    package var decodeSeconds: Double
    package var prefillTokensPerSecond: Double { prefillSeconds > 0 ? Double(promptTokens) / prefillSeconds : 0 }
    package var decodeTokensPerSecond: Double { decodeSeconds > 0 ? Double(max(tokens.count - 1, 0)) / decodeSeconds : 0 }
}

/// Text generation with a KV cache: the prompt is run once (batched prefill), then one token
/// at a time.
package enum Generator {
    /// Generates up to `maxTokens` tokens after `prompt`, calling `onToken` with each as it comes;
    /// stops early at `stopTokens` or when `isCancelled` says so. Weights not held as fp32 are
    /// multiplied as held by the decode kernels where they take them, and otherwise converted once
    /// into `conversions` and reused by every token.
    package static func generate(
        model: CausalLanguageModel, prompt: [Int], maxTokens: Int, sampling: SamplingOptions = SamplingOptions(),
        stopTokens: Set<Int> = [], conversions: ConversionCache = .generation(), onToken: (Int) -> Void = { _ in },
        isCancelled: () -> Bool = { false }
    ) throws -> GenerationResult {
        guard !prompt.isEmpty else { throw EngineError("the prompt is empty: generation needs at least one token") }
        let capacity = prompt.count + maxTokens
        let limit = model.config.maxPositionEmbeddings
        if limit > 0, capacity > limit {
            throw EngineError("prompt (\(prompt.count)) plus tokens (\(maxTokens)) exceed the model's context of \(limit)")
        }
        let cache = model.makeCache(capacity: capacity)
        var random = SeededGenerator(seed: sampling.seed)
        let start = Date()
        var logits = try model.forward(prompt, cache: cache, conversions: conversions, lastRowOnly: true, isCancelled: isCancelled)
        let prefill = Date().timeIntervalSince(start)
        var generated: [Int] = []
        let decodeStart = Date()
        while generated.count < maxTokens, !isCancelled() {
            let row = logits.data[(logits.rows - 1) * logits.cols ..< logits.rows * logits.cols]
            if row.contains(where: { !$0.isFinite }) {
                let location = try NonFiniteProbe.locate(model, tokens: prompt + generated) ?? "no weight or activation of the text so far is"
                throw EngineError("the next-token logits are not finite (\(location)): nothing can be generated")
            }
            let next = pick(logits, row: logits.rows - 1, sampling: sampling, random: &random)
            generated.append(next)
            onToken(next)
            if stopTokens.contains(next) || generated.count == maxTokens { break }
            logits = try model.forward([next], cache: cache, conversions: conversions)
        }
        return GenerationResult(
            tokens: generated, promptTokens: prompt.count, prefillSeconds: prefill,
            decodeSeconds: Date().timeIntervalSince(decodeStart))
    }

    /// The next token from one row of logits.
    static func pick(_ logits: Activations, row: Int, sampling: SamplingOptions, random: inout SeededGenerator) -> Int {
        let values = Array(logits.data[row * logits.cols ..< (row + 1) * logits.cols])
        if sampling.temperature <= 0 {
            var best = 0
            for i in values.indices where values[i] > values[best] { best = i }
            return best
        }
        var candidates = Array(values.indices)
        if let k = sampling.topK, k > 0, k < candidates.count {
            candidates = Array(candidates.sorted { values[$0] > values[$1] }.prefix(k))
        }
        let maximum = candidates.map { values[$0] }.max() ?? 0
        let weights = candidates.map { Foundation.exp(Double(values[$0] - maximum) / sampling.temperature) }
        let total = weights.reduce(0, +)
        var threshold = Double.random(in: 0 ..< total, using: &random)
        for (i, weight) in weights.enumerated() {
            threshold -= weight
            if threshold < 0 { return candidates[i] }
        }
        return candidates.last ?? 0
    }
}
