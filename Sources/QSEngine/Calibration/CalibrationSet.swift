/// A reproducible calibration set: `samples` windows of `length` tokens at random places in a
/// tokenized text, drawn with a seeded generator (the random windows GPTQ, AWQ and
/// llm-compressor calibrate on). The same text, seed and sizes give the same windows.
package struct CalibrationSet: Sendable, Equatable {
    package var text: String
    package var samples: Int
    package var length: Int
    package var seed: UInt64
    /// The token ids of each window.
    package var windows: [[Int]]
    /// Where each window begins in the text's tokens.
    package var starts: [Int]
    /// Tokens in the text the windows were drawn from.
    package var textTokens: Int

    /// Draws the windows from `tokens`. A text shorter than one window is an error; windows
    /// may overlap when the text is short (each start is drawn uniformly).
    package init(text: String, tokens: [Int], samples: Int, length: Int, seed: UInt64) throws {
        guard samples > 0, length > 0 else { throw EngineError("a calibration set needs at least one window of at least one token") }
        guard tokens.count >= length else {
            throw EngineError(subject: text, "has \(tokens.count) tokens, fewer than one window of \(length): use a longer text or a smaller seqlen")
        }
        var generator = SeededGenerator(seed: seed)
        let lastStart = tokens.count - length
        starts = (0 ..< samples).map { _ in Int.random(in: 0 ... lastStart, using: &generator) }
        windows = starts.map { Array(tokens[$0 ..< $0 + length]) }
        self.text = text
        self.samples = samples
        self.length = length
        self.seed = seed
        textTokens = tokens.count
    }

    /// Tokens in all windows.
    package var tokenCount: Int { samples * length }
}
