import Foundation
import QSTestSupport
import Testing
@testable import QSEngine

/// Forward passes of tiny random models against transformers' outputs
/// (scripts/reference/make_arch_fixtures.py).
@Suite struct ArchitectureParityTests {
    struct Expected: Decodable {
        var ids: [Int]
        var logits: [Float]?
        var hidden: [Float]?
        var embedding: [Float]?
    }

    static func fixture(_ name: String) throws -> (Checkpoint, Expected) {
        let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
            .appendingPathComponent("arch").appendingPathComponent(name)
        let checkpoint = try Checkpoint.open(folder.path)
        let data = try Data(contentsOf: folder.appendingPathComponent("expected.json"))
        return (checkpoint, try JSONDecoder().decode(Expected.self, from: data))
    }

    @Test(arguments: ["llama", "smollm2", "qwen2", "mistral", "gpt2"])
    func causalLogitsMatchTransformers(name: String) throws {
        let (checkpoint, expected) = try Self.fixture(name)
        let model = try #require(try ModelLoader.model(for: checkpoint) as? CausalLanguageModel)
        let logits = try model.forward(expected.ids)
        #expect(logits.rows == expected.ids.count)
        #expect(relativeError(logits.data, try #require(expected.logits)) < 1e-4)
    }

    @Test(arguments: ["llama", "smollm2", "gpt2"])
    func incrementalDecodingMatchesFullForward(name: String) throws {
        let (checkpoint, expected) = try Self.fixture(name)
        let model = try #require(try ModelLoader.model(for: checkpoint) as? CausalLanguageModel)
        let cache = model.makeCache(capacity: expected.ids.count)
        _ = try model.forward(Array(expected.ids.prefix(10)), cache: cache)
        var last = Activations(rows: 0, cols: 0)
        for id in expected.ids.dropFirst(10) {
            last = try model.forward([id], cache: cache)
        }
        let vocab = checkpoint.config!.vocabSize
        let full = try #require(expected.logits)
        #expect(cache.length == expected.ids.count)
        #expect(relativeError(last.data, Array(full.suffix(vocab))) < 1e-4)
    }

    @Test func bertHiddenStatesAndEmbeddingMatchTransformers() throws {
        let (checkpoint, expected) = try Self.fixture("bert")
        let model = try #require(try ModelLoader.model(for: checkpoint) as? BERTModel)
        let hidden = try model.encode(expected.ids)
        #expect(relativeError(hidden.data, try #require(expected.hidden)) < 1e-4)
        let embedding = try model.sentenceEmbedding(expected.ids)
        #expect(relativeError(embedding, try #require(expected.embedding)) < 1e-4)
    }

    @Test func canonicalNamesMapToEachArchitecture() throws {
        let cases: [(String, String, String)] = [
            ("llama", "layer.1.attn.q", "model.layers.1.self_attn.q_proj"),
            ("qwen2", "layer.0.mlp.down", "model.layers.0.mlp.down_proj"),
            ("gpt2", "layer.1.attn.qkv", "transformer.h.1.attn.c_attn"),
            ("gpt2", "embed", "transformer.wte"),
            ("bert", "layer.0.attn.o", "encoder.layer.0.attention.output.dense"),
            ("bert", "layer.1.mlp.up", "encoder.layer.1.intermediate.dense"),
        ]
        for (fixture, canonical, module) in cases {
            let (checkpoint, _) = try Self.fixture(fixture)
            let model = try ModelLoader.model(for: checkpoint)
            #expect(model.names.entry(canonical)?.module == module, "\(fixture): \(canonical)")
            #expect(model.names.canonical(forTensor: module + ".weight") == canonical)
        }
    }

    @Test func tokenOutsideVocabularyIsAnError() throws {
        let (checkpoint, _) = try Self.fixture("llama")
        let model = try #require(try ModelLoader.model(for: checkpoint) as? CausalLanguageModel)
        #expect(throws: EngineError.self) { try model.forward([1, 96]) }
    }
}

@Suite struct ConverterTests {
    /// Converting a Hugging Face folder keeps its config.json keys in order with the dtype
    /// updated, writes the weights in the new dtype, and reloads to the same forward pass.
    @Test func convertedFolderKeepsConfigAndComputesTheSame() throws {
        let source = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("arch/qwen2")
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("qs-convert-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let checkpoint = try Checkpoint.open(source.path)
        try Converter.convert(checkpoint, to: output, dtype: .bf16)
        let original = try String(contentsOf: source.appendingPathComponent("config.json"), encoding: .utf8)
        let written = try String(contentsOfFile: output + "/config.json", encoding: .utf8)
        let keys: (String) -> [String] = { text in
            text.split(separator: "\n").filter { $0.hasPrefix("  \"") }.map { String($0.split(separator: "\"")[1]) }
        }
        #expect(keys(written) == keys(original))
        #expect(written.contains("\"dtype\": \"bfloat16\""))
        let converted = try Checkpoint.open(output)
        #expect(converted.tensors.allSatisfy { $0.dtype == .bf16 })
        #expect(converted.config == checkpoint.config.map { var c = $0; c.torchDType = "bfloat16"; return c })
        let ids = [5, 17, 3, 88, 41]
        let before = try #require(try ModelLoader.model(for: checkpoint) as? CausalLanguageModel).forward(ids)
        let after = try #require(try ModelLoader.model(for: converted) as? CausalLanguageModel).forward(ids)
        // bf16 keeps 8 bits of mantissa: the logits move, but only a little.
        #expect(relativeError(after.data, before.data) < 0.05)
        #expect(throws: EngineError.self) { try Converter.convert(checkpoint, to: source.path, dtype: .f32) }
    }
}
