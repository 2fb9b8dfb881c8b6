import Foundation
import Testing

@testable import QSEngine

@Suite struct ModelConfigTests {
    static func fixture(_ name: String) throws -> ModelConfig {
        let path = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("configs/\(name)").path
        return try ModelConfig(configJSONAt: path)
    }

    static func parse(_ text: String) throws -> ModelConfig {
        try ModelConfig(configJSON: Data(text.utf8), path: "config.json")
    }

    @Test func llama() throws {
        let config = try Self.fixture("llama.json")
        #expect(config.architecture == .llama)
        #expect(config.vocabSize == 32000 && config.hiddenSize == 2048 && config.intermediateSize == 5632)
        #expect(config.numHiddenLayers == 22 && config.numAttentionHeads == 32 && config.numKeyValueHeads == 4)
        #expect(config.headDim == 64 && config.maxPositionEmbeddings == 2048)
        #expect(config.normEps == 1e-5 && config.ropeTheta == 10000)
        #expect(!config.tieWordEmbeddings && !config.attentionBias && config.hiddenAct == "silu")
        #expect(config.bosTokenId == 1 && config.eosTokenId == 2 && config.extraEosTokenIds.isEmpty)
        #expect(config.torchDType == "bfloat16")
        #expect(config.extraConfigKeys["pretraining_tp"] == .integer(1))
        #expect(config.extraConfigKeys["rope_scaling"] == nil && config.extraConfigKeys["transformers_version"] == nil)
    }

    @Test func mistral() throws {
        let config = try Self.fixture("mistral.json")
        #expect(config.architecture == .mistral)
        #expect(config.hiddenSize == 4096 && config.intermediateSize == 14336 && config.numKeyValueHeads == 8)
        #expect(config.headDim == 128 && config.maxPositionEmbeddings == 32768 && config.normEps == 1e-5)
        #expect(config.extraConfigKeys["sliding_window"] == .integer(4096))
    }

    @Test func qwen2HasBiasesAndTiedEmbeddings() throws {
        let config = try Self.fixture("qwen2.json")
        #expect(config.architecture == .qwen2)
        #expect(config.attentionBias && config.tieWordEmbeddings)
        #expect(config.hiddenSize == 896 && config.numAttentionHeads == 14 && config.numKeyValueHeads == 2 && config.headDim == 64)
        #expect(config.ropeTheta == 1_000_000 && config.normEps == 1e-6 && config.vocabSize == 151936)
        #expect(config.bosTokenId == 151643 && config.eosTokenId == 151643)
    }

    @Test func gpt2UsesItsOwnKeyNames() throws {
        let config = try Self.fixture("gpt2.json")
        #expect(config.architecture == .gpt2)
        #expect(config.hiddenSize == 768 && config.numHiddenLayers == 12 && config.numAttentionHeads == 12)
        #expect(config.intermediateSize == 3072, "n_inner absent: 4 × n_embd")
        #expect(config.maxPositionEmbeddings == 1024 && config.normEps == 1e-5 && config.hiddenAct == "gelu_new")
        #expect(config.vocabSize == 50257 && config.tieWordEmbeddings && config.headDim == 64)
        #expect(config.extraConfigKeys["n_ctx"] == .integer(1024))
        #expect(config.extraConfigKeys["n_embd"] == nil)
    }

    @Test func bert() throws {
        let config = try Self.fixture("bert.json")
        #expect(config.architecture == .bert)
        #expect(config.hiddenSize == 768 && config.intermediateSize == 3072 && config.typeVocabSize == 2)
        #expect(config.normEps == 1e-12 && config.hiddenAct == "gelu" && config.maxPositionEmbeddings == 512)
        #expect(config.extraConfigKeys["architectures"] == .array([.string("BertForMaskedLM")]))
    }

    @Test func realMiniLMConfig() throws {
        let config = try Self.fixture("minilm_l6.json")
        #expect(config.architecture == .bert)
        #expect(config.vocabSize == 30522 && config.hiddenSize == 384 && config.intermediateSize == 1536)
        #expect(config.numHiddenLayers == 6 && config.numAttentionHeads == 12 && config.headDim == 32)
        #expect(config.maxPositionEmbeddings == 512 && config.typeVocabSize == 2 && config.normEps == 1e-12)
        #expect(config.hiddenAct == "gelu")
        #expect(config.extraConfigKeys["pad_token_id"] == .integer(0))
        #expect(config.torchDType == nil)
    }

    @Test func transformers5RopeParameters() throws {
        let config = try Self.fixture("llama_rope_parameters.json")
        #expect(config.architecture == .llama)
        #expect(config.ropeTheta == 100_000)
        #expect(config.headDim == 64 && config.numKeyValueHeads == 3 && config.tieWordEmbeddings)
        #expect(config.eosTokenId == 2 && config.extraEosTokenIds == [0])
        #expect(config.torchDType == "bfloat16", "transformers 5 spells it dtype")
        #expect(config.extraConfigKeys["rope_parameters"] == nil && config.extraConfigKeys["dtype"] == nil)
    }

    @Test(arguments: ["llama.json", "mistral.json", "qwen2.json", "gpt2.json", "bert.json", "minilm_l6.json", "llama_rope_parameters.json"])
    func writtenConfigReadsBackEqual(name: String) throws {
        let config = try Self.fixture(name)
        let written = config.configJSON()
        let reread = try ModelConfig(configJSON: written, path: "written.json")
        var expected = config
        expected.torchDType = config.torchDType ?? "float32"
        #expect(reread == expected)
        let json = try StrictJSON.parse([UInt8](written))
        #expect(json["model_type"] == .string(config.architecture.rawValue))
        #expect(json["torch_dtype"] == .string(expected.torchDType!))
        let keys = try #require(json.members?.map(\.key))
        #expect(keys == keys.sorted())
        #expect(written.last == UInt8(ascii: "\n"))
    }

    @Test func writesEveryKeyTransformersNeeds() throws {
        var config = ModelConfig(
            architecture: .llama, vocabSize: 100, hiddenSize: 64, intermediateSize: 128, numHiddenLayers: 2,
            numAttentionHeads: 4, numKeyValueHeads: 2, maxPositionEmbeddings: 256, normEps: 1e-5, ropeTheta: 500_000,
            tieWordEmbeddings: true, bosTokenId: 1, eosTokenId: 2)
        config.extraConfigKeys["quantization_config"] = .object([StrictJSON.Member("quant_method", .string("gptq"))])
        let json = try StrictJSON.parse([UInt8](config.configJSON()))
        let expected: [String: StrictJSON] = [
            "model_type": .string("llama"), "architectures": .array([.string("LlamaForCausalLM")]), "torch_dtype": .string("float32"),
            "vocab_size": .integer(100), "hidden_size": .integer(64), "intermediate_size": .integer(128),
            "num_hidden_layers": .integer(2), "num_attention_heads": .integer(4), "num_key_value_heads": .integer(2),
            "head_dim": .integer(16), "max_position_embeddings": .integer(256), "rms_norm_eps": .number(1e-5),
            "rope_theta": .number(500_000), "tie_word_embeddings": .bool(true), "attention_bias": .bool(false),
            "hidden_act": .string("silu"), "bos_token_id": .integer(1), "eos_token_id": .integer(2),
        ]
        for (key, value) in expected { #expect(json[key] == value, "\(key)") }
        #expect(json["rope_parameters"]?["rope_theta"] == .number(500_000))
        #expect(json["quantization_config"]?["quant_method"] == .string("gptq"))

        let gpt2 = ModelConfig(
            architecture: .gpt2, vocabSize: 50, hiddenSize: 32, intermediateSize: 100, numHiddenLayers: 1,
            numAttentionHeads: 2, maxPositionEmbeddings: 64, normEps: 1e-5, hiddenAct: "gelu_new")
        let gpt2JSON = try StrictJSON.parse([UInt8](gpt2.configJSON()))
        #expect(gpt2JSON["n_embd"] == .integer(32) && gpt2JSON["n_inner"] == .integer(100) && gpt2JSON["n_positions"] == .integer(64))
        #expect(gpt2JSON["architectures"] == .array([.string("GPT2LMHeadModel")]) && gpt2JSON["hidden_size"] == nil)
    }

    @Test func architectureFromTheClassNameWhenModelTypeIsAbsent() throws {
        let config = try Self.parse(
            #"{"architectures": ["Qwen2ForCausalLM"], "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2}"#)
        #expect(config.architecture == .qwen2)
        #expect(config.maxPositionEmbeddings == 32768 && config.normEps == 1e-6 && config.numKeyValueHeads == 2)
    }

    /// Configs that must be rejected, the key the error names, and a phrase of the message.
    static let badConfigs: [(json: String, key: String?, phrase: String)] = [
        (#"{"model_type": "falcon"}"#, "model_type", "unsupported model_type 'falcon'; qs supports llama, mistral, qwen2, gpt2, bert"),
        (#"{"architectures": ["Qwen2MoeForCausalLM"]}"#, "architectures", "unsupported architecture 'Qwen2MoeForCausalLM'"),
        (#"{"vocab_size": 3}"#, "model_type", "is missing"),
        (#"{"model_type": "llama", "vocab_size": 10, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2}"#, "hidden_size", "is missing; a llama config.json needs it"),
        (#"{"model_type": "bert", "vocab_size": 10, "hidden_size": "8", "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2}"#, "hidden_size", "is a string, expected an integer"),
        (#"{"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "rms_norm_eps": "1e-5"}"#, "rms_norm_eps", "expected a number"),
        (#"{"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "tie_word_embeddings": 1}"#, "tie_word_embeddings", "expected true or false"),
        (#"{"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "rope_scaling": {"rope_type": "llama3", "factor": 8.0}}"#, "rope_scaling", "rope_type 'llama3' is not supported"),
        (#"{"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "rope_parameters": {"rope_type": "yarn"}}"#, "rope_parameters", "rope_type 'yarn'"),
        (#"{"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 3}"#, "num_key_value_heads", "does not divide"),
        (#"{"model_type": "gpt2", "vocab_size": 10, "n_embd": 0, "n_layer": 1, "n_head": 2}"#, "n_embd", "expected a positive integer"),
        (#"{"model_type": "gpt2", "vocab_size": 10, "n_embd": 8, "n_head": 2}"#, "n_layer", "is missing; a gpt2 config.json needs it"),
        (#"{"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "eos_token_id": [2, "x"]}"#, "eos_token_id", "expected integers"),
        (#"{"model_type": "llama",}"#, nil, "config is not valid JSON: invalid JSON at byte 23: unexpected character '}', expected a string key"),
        (#"[]"#, nil, "expected a JSON object"),
        // Sizes no model has are refused before any shape is computed from them (a product of
        // two would overflow: the hostile probe's head_dim of 2^62).
        (#"{"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "head_dim": 4611686018427387904}"#, "head_dim", "larger than any model's"),
        (#"{"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 4611686018427387904}"#, "num_attention_heads", "larger than any model's"),
        (#"{"model_type": "gpt2", "vocab_size": 10, "n_embd": 4611686018427387904, "n_layer": 1, "n_head": 2}"#, "n_embd", "larger than any model's"),
        (#"{"model_type": "bert", "vocab_size": 2147483648, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2}"#, "vocab_size", "larger than any model's"),
        // Every family rejects an activation or an option it does not implement.
        (#"{"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "hidden_act": "relu2"}"#, "hidden_act", "'relu2' is not supported"),
        (#"{"model_type": "gpt2", "vocab_size": 10, "n_embd": 8, "n_layer": 1, "n_head": 2, "activation_function": "relu"}"#, "activation_function", "'relu' is not supported"),
        (#"{"model_type": "bert", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "hidden_act": "relu"}"#, "hidden_act", "'relu' is not supported"),
        (#"{"model_type": "bert", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "position_embedding_type": "relative_key"}"#, "position_embedding_type", "'relative_key' is not supported"),
        (#"{"model_type": "bert", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "is_decoder": true}"#, "is_decoder", "encoder only"),
    ]

    @Test(arguments: 0 ..< badConfigs.count)
    func badConfigNamesTheKey(case index: Int) {
        let bad = Self.badConfigs[index]
        do {
            _ = try Self.parse(bad.json)
            Issue.record("accepted \(bad.json)")
        } catch let error as EngineError {
            #expect(error.path == "config.json")
            #expect(error.subject == bad.key, "\(error)")
            #expect(error.message.contains(bad.phrase), "\(error)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }
}
