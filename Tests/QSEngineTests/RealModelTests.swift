import Foundation
import Testing
@testable import QSEngine

/// The real SmolLM2 (its registry GGUF) and Shakespeare, fetched by scripts/test, which sets
/// QS_SMOLLM2_GGUF and QS_SHAKESPEARE_DIR.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["QS_SMOLLM2_GGUF"] != nil
    && ProcessInfo.processInfo.environment["QS_SHAKESPEARE_DIR"] != nil))
struct RealModelTests {
    var gguf: String { ProcessInfo.processInfo.environment["QS_SMOLLM2_GGUF"] ?? "" }
    var texts: String { ProcessInfo.processInfo.environment["QS_SHAKESPEARE_DIR"] ?? "" }

    struct PerplexityFixture: Decodable {
        struct Settings: Decodable { var tokens: Int; var context: Int; var stride: Int; var bos: Bool }
        var `protocol`: Settings
        var perplexity: Double
        var scored: Int
        var first_ids: [Int]
    }

    /// transformers' perplexity on the same weights and protocol
    /// (scripts/reference/make_smollm2_ppl.py); qs must agree within 0.1%.
    @Test func perplexityMatchesTransformers() throws {
        let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
            .appendingPathComponent("real/smollm2_ppl.json")
        let fixture = try JSONDecoder().decode(PerplexityFixture.self, from: Data(contentsOf: url))
        let checkpoint = try Checkpoint.open(gguf)
        let model = try #require(try ModelLoader.model(for: checkpoint) as? CausalLanguageModel)
        let tokenizer = try #require(try Tokenizer.load(for: checkpoint))
        let corpus = try TextCorpus.collection(
            name: "shakespeare", folder: texts, glob: "*_gut.txt", minimumCharacters: fixture.protocol.tokens * 8)
        let ids = Array(tokenizer.encode(corpus.text, addSpecialTokens: false).prefix(fixture.protocol.tokens))
        #expect(Array(ids.prefix(fixture.first_ids.count)) == fixture.first_ids)
        let measured = PerplexityProtocol(
            text: "shakespeare", tokens: ids.count, context: fixture.protocol.context, stride: fixture.protocol.stride,
            bos: fixture.protocol.bos)
        let result = try Perplexity.evaluate(model: model, tokens: ids, measuredWith: measured)
        #expect(result.scored == fixture.scored)
        let relative = abs(result.perplexity - fixture.perplexity) / fixture.perplexity
        #expect(relative < 0.001, "qs \(result.perplexity) vs transformers \(fixture.perplexity)")
    }

    /// `qs convert smollm2-135m OUT --dtype f32` writes every weight equal, bit for bit, to the
    /// GGUF's dequantized values with the q/k permutation undone, and a tokenizer that gives
    /// the GGUF tokenizer's ids.
    @Test func convertWritesTheDequantizedWeightsBitForBit() throws {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("qs-convert-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let source = try Checkpoint.open(gguf)
        try Converter.convert(source, to: output, dtype: .f32)
        let converted = try Checkpoint.open(output)
        #expect(converted.config?.architecture == .llama)
        #expect(converted.config?.tieWordEmbeddings == true)
        #expect(converted.tensors.count == source.tensors.count)
        let written = Dictionary(uniqueKeysWithValues: converted.tensors.map { ($0.name, $0) })
        for tensor in source.tensors {
            let copy = try #require(written[tensor.name], "\(tensor.name) is missing")
            #expect(copy.dtype == .f32 && copy.shape == tensor.shape)
            let expected = try Dequantize.floats(tensor)
            let same = copy.withBytes { bytes in
                expected.withUnsafeBytes { $0.elementsEqual(bytes) }
            }
            #expect(same, "\(tensor.name) differs")
        }
        // Independent of qs's own dequantization: the gguf package's values (fixture).
        let reference = try GGUFFixtures.json("smollm2_samples.json") as! [String: Any]
        for summary in (reference["tensors"] as! [Any]).map(TensorSummary.init) {
            let tensor = try #require(written[summary.hfName ?? ""])
            #expect(summary.mismatch(try Dequantize.floats(tensor)) == nil)
        }
        let sample = "Hark! 1234 gentle friends, café — 你好"
        let original = try #require(try Tokenizer.load(for: source))
        let reloaded = try #require(try Tokenizer.load(for: converted))
        #expect(reloaded.encode(sample, addSpecialTokens: false) == original.encode(sample, addSpecialTokens: false))
    }
}
