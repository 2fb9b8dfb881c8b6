import Foundation
import QSTestSupport
import Testing
@testable import QSEngine

/// Configurations that do not fit their tensors, generated over every architecture: each
/// must be refused when the model is opened, naming the tensor and the key that disagree,
/// never loaded as a different model or left for the first forward pass to trap on.
@Suite struct ConfigMismatchTests {
    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("arch")

    /// A change to a fixture: config.json keys set (nil removes the key), tensors dropped, tensors added.
    struct Mismatch: CustomStringConvertible, Sendable {
        var fixture: String
        var keys: [String: String] = [:]
        var dropTensor: String?
        var addTensor: (name: String, shape: [Int])?
        /// What the error must name: a tensor or config key (its subject, or the start of it when
        /// several tensors are left over), and a phrase of the message; `|` separates alternatives.
        var subject: String
        var phrase: String

        var description: String { "\(fixture) \(keys) drop \(dropTensor ?? "-") add \(addTensor?.name ?? "-")" }
    }

    static let cases: [Mismatch] = {
        var cases: [Mismatch] = []
        // The llama family: every size key, the head layout, biases, ties, the layer count.
        for fixture in ["llama", "smollm2", "qwen2", "mistral"] {
            let layer = "model.layers.0."
            cases += [
                Mismatch(fixture: fixture, keys: ["hidden_size": "64"], subject: "model.embed_tokens.weight", phrase: "hidden_size"),
                Mismatch(fixture: fixture, keys: ["intermediate_size": "65"], subject: layer + "mlp.gate_proj.weight", phrase: "intermediate_size gives 65"),
                Mismatch(fixture: fixture, keys: ["vocab_size": "97"], subject: "model.embed_tokens.weight", phrase: "vocab_size gives 97"),
                Mismatch(fixture: fixture, keys: ["head_dim": "16"], subject: layer + "self_attn.q_proj.weight", phrase: "num_attention_heads × head_dim"),
                Mismatch(fixture: fixture, keys: ["num_key_value_heads": "4"], subject: layer + "self_attn.k_proj.weight", phrase: "num_key_value_heads × head_dim"),
                Mismatch(fixture: fixture, keys: ["num_hidden_layers": "1"], subject: "model.layers.1.", phrase: "is not part of"),
                // Either the count is already beyond what the file could hold, or layer 2 is missing.
                Mismatch(fixture: fixture, keys: ["num_hidden_layers": "3"], subject: "num_hidden_layers|model.layers.2.input_layernorm.weight", phrase: "too few|tensor is missing"),
                Mismatch(fixture: fixture, keys: ["num_hidden_layers": "10000000"], subject: "num_hidden_layers", phrase: "too few for 10000000 blocks"),
                Mismatch(fixture: fixture, dropTensor: "model.layers.1.mlp.down_proj.weight", subject: "model.layers.1.mlp.down_proj.weight", phrase: "tensor is missing"),
                Mismatch(fixture: fixture, addTensor: ("model.layers.1.mlp.extra.weight", [4]), subject: "model.layers.1.mlp.extra.weight", phrase: "is not part of"),
                Mismatch(fixture: fixture, keys: ["model_type": "\"gpt2\"", "n_embd": "32", "n_layer": "2", "n_head": "4"], subject: "wte.weight", phrase: "tensor is missing"),
                Mismatch(fixture: fixture, keys: ["model_type": "\"bert\"", "type_vocab_size": "2"], subject: "embeddings.word_embeddings.weight", phrase: "tensor is missing"),
            ]
        }
        cases += [
            // A head count that changes the key/value width (head_dim derived from hidden_size).
            Mismatch(fixture: "qwen2", keys: ["num_attention_heads": "8"], subject: "model.layers.0.self_attn.k_proj.weight", phrase: "num_key_value_heads × head_dim"),
            Mismatch(fixture: "llama", keys: ["attention_bias": "true"], subject: "model.layers.0.self_attn.q_proj.bias", phrase: "tensor is missing"),
            Mismatch(fixture: "llama", keys: ["mlp_bias": "true"], subject: "model.layers.0.mlp.gate_proj.bias", phrase: "tensor is missing"),
            Mismatch(fixture: "smollm2", keys: ["tie_word_embeddings": "false"], subject: "lm_head.weight", phrase: "tensor is missing"),
            Mismatch(fixture: "llama", keys: ["model_type": "\"qwen2\""], subject: "model.layers.0.self_attn.q_proj.bias", phrase: "tensor is missing"),
            Mismatch(fixture: "qwen2", keys: ["model_type": "\"llama\""], subject: "model.layers.0.self_attn.", phrase: "is not part of"),
        ]
        // GPT-2: its own key names, the fused q/k/v projection, learned positions.
        let gpt2Layer = "transformer.h.0."
        cases += [
            Mismatch(fixture: "gpt2", keys: ["n_embd": "64"], subject: "transformer.wte.weight", phrase: "n_embd"),
            Mismatch(fixture: "gpt2", keys: ["n_inner": "65"], subject: gpt2Layer + "mlp.c_fc.weight", phrase: "n_inner gives 65"),
            Mismatch(fixture: "gpt2", keys: ["n_positions": "65"], subject: "transformer.wpe.weight", phrase: "n_positions gives 65"),
            Mismatch(fixture: "gpt2", keys: ["vocab_size": "97"], subject: "transformer.wte.weight", phrase: "vocab_size gives 97"),
            Mismatch(fixture: "gpt2", keys: ["n_layer": "1"], subject: "transformer.h.1.", phrase: "is not part of"),
            Mismatch(fixture: "gpt2", keys: ["n_layer": "3"], subject: "n_layer|transformer.h.2.ln_1.weight", phrase: "too few|tensor is missing"),
            Mismatch(fixture: "gpt2", keys: ["n_layer": "10000000"], subject: "n_layer", phrase: "too few"),
            Mismatch(fixture: "gpt2", keys: ["tie_word_embeddings": "false"], subject: "lm_head.weight", phrase: "tensor is missing"),
            Mismatch(fixture: "gpt2", dropTensor: "transformer.h.1.attn.c_attn.bias", subject: "transformer.h.1.attn.c_attn.bias", phrase: "tensor is missing"),
            Mismatch(fixture: "gpt2", keys: ["model_type": "\"llama\"", "hidden_size": "32", "intermediate_size": "64", "num_hidden_layers": "2", "num_attention_heads": "4"], subject: "model.embed_tokens.weight", phrase: "tensor is missing"),
        ]
        // BERT: the encoder's embeddings, token types, pooler and blocks.
        let bertLayer = "encoder.layer.0."
        cases += [
            Mismatch(fixture: "bert", keys: ["hidden_size": "64"], subject: "embeddings.word_embeddings.weight", phrase: "hidden_size"),
            Mismatch(fixture: "bert", keys: ["intermediate_size": "65"], subject: bertLayer + "intermediate.dense.weight", phrase: "intermediate_size gives 65"),
            Mismatch(fixture: "bert", keys: ["max_position_embeddings": "65"], subject: "embeddings.position_embeddings.weight", phrase: "max_position_embeddings gives 65"),
            Mismatch(fixture: "bert", keys: ["type_vocab_size": "3"], subject: "embeddings.token_type_embeddings.weight", phrase: "type_vocab_size gives 3"),
            Mismatch(fixture: "bert", keys: ["vocab_size": "97"], subject: "embeddings.word_embeddings.weight", phrase: "vocab_size gives 97"),
            Mismatch(fixture: "bert", keys: ["num_hidden_layers": "1"], subject: "encoder.layer.1.", phrase: "is not part of"),
            Mismatch(fixture: "bert", keys: ["num_hidden_layers": "3"], subject: "num_hidden_layers|encoder.layer.2.attention.self.query.weight", phrase: "too few|tensor is missing"),
            Mismatch(fixture: "bert", dropTensor: "embeddings.LayerNorm.bias", subject: "embeddings.LayerNorm.bias", phrase: "tensor is missing"),
            Mismatch(fixture: "bert", addTensor: ("cls.predictions.bias", [96]), subject: "cls.predictions.bias", phrase: "is not part of"),
        ]
        return cases
    }()

    /// The fixture with its config.json keys changed and its tensors dropped or added, in a
    /// temporary folder the caller removes.
    static func build(_ mismatch: Mismatch) throws -> String {
        let source = fixtures.appendingPathComponent(mismatch.fixture)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("qs-mismatch-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var config = try StrictJSON.parse([UInt8](Data(contentsOf: source.appendingPathComponent("config.json")))).members!
        for (key, value) in mismatch.keys {
            config.removeAll { $0.key == key }
            config.append(StrictJSON.Member(key, try StrictJSON.parse(Array(value.utf8))))
        }
        try Data(StrictJSON.object(config).serialized(indent: 2).utf8).write(to: URL(fileURLWithPath: folder + "/config.json"))
        let checkpoint = try Checkpoint.open(source.path)
        var tensors = try checkpoint.tensors.filter { $0.name != mismatch.dropTensor }.map { try TensorToWrite(copying: $0) }
        if let (name, shape) = mismatch.addTensor {
            tensors.append(try TensorToWrite(name: name, dtype: .f32, shape: shape) { _ in })
        }
        _ = try SafetensorsWriter.write(tensors, metadata: ["format": "pt"], toFolder: folder)
        return folder
    }

    @Test(arguments: cases)
    func mismatchIsRefusedNamingTensorAndKey(_ mismatch: Mismatch) throws {
        let folder = try Self.build(mismatch)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        do {
            let checkpoint = try Checkpoint.open(folder)
            _ = try ModelLoader.model(for: checkpoint)
            Issue.record("loaded \(mismatch)")
        } catch let error as EngineError {
            let subjects = mismatch.subject.split(separator: "|").map(String.init)
            let phrases = mismatch.phrase.split(separator: "|").map(String.init)
            #expect(subjects.contains { error.subject?.hasPrefix($0) == true }, "\(mismatch): \(error)")
            #expect(phrases.contains { error.message.contains($0) }, "\(mismatch): \(error)")
            #expect(error.path == folder, "\(error)")
        }
    }

    @Test func everyArchitectureIsCovered() {
        #expect(Set(Self.cases.map(\.fixture)) == ["llama", "smollm2", "qwen2", "mistral", "gpt2", "bert"])
        #expect(Self.cases.count >= 60)
    }

    /// The unchanged fixtures load: the checks accept what is right.
    @Test(arguments: ["llama", "smollm2", "qwen2", "mistral", "gpt2", "bert"])
    func fittingFixturesLoad(name: String) throws {
        let model = try ModelLoader.model(for: try Checkpoint.open(Self.fixtures.appendingPathComponent(name).path))
        #expect(!model.names.entries.isEmpty)
    }
}

/// The same checks for a configuration read from GGUF metadata: every key config.json gets
/// checked, the shapes it implies, and the layer count bounded by the tensors.
@Suite struct GGUFConfigMismatchTests {
    static func checkpoint() throws -> Checkpoint {
        try Checkpoint.open(ConfigMismatchTests.fixtures.appendingPathComponent("llama").path)
    }

    @Test func faithfulGGUFLoads() throws {
        let path = GGUFFixtures.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try TinyGGUF.write(try Self.checkpoint(), to: path)
        let model = try ModelLoader.model(for: try Checkpoint.open(path))
        #expect(model.config.numHiddenLayers == 2 && model.names.entry("head") != nil)
    }

    static let cases: [(key: String, value: TinyGGUF.Value?, subject: String, phrase: String)] = [
        ("llama.embedding_length", .u32(64), "model.embed_tokens.weight", "hidden_size gives 64"),
        ("llama.feed_forward_length", .u32(65), "model.layers.0.mlp.gate_proj.weight", "intermediate_size gives 65"),
        ("llama.attention.head_count", .u32(8), "model.layers.0.self_attn.q_proj.weight", "num_attention_heads × head_dim"),
        ("llama.attention.head_count", .u32(3), "llama.attention.head_count_kv", "does not divide"),
        ("llama.attention.head_count_kv", .u32(4), "model.layers.0.self_attn.k_proj.weight", "num_key_value_heads × head_dim"),
        ("llama.attention.key_length", .u32(16), "model.layers.0.self_attn.q_proj.weight", "head_dim"),
        ("llama.block_count", .u32(1), "model.layers.1.", "is not part of"),
        ("llama.block_count", .u32(10_000_000), "num_hidden_layers", "too few"),
        ("llama.vocab_size", .u32(97), "model.embed_tokens.weight", "vocab_size gives 97"),
        ("llama.rope.freq_base", .f32(-10000), "llama.rope.freq_base", "expected a positive finite number"),
        ("llama.attention.layer_norm_rms_epsilon", .f32(-1e-5), "llama.attention.layer_norm_rms_epsilon", "expected a positive finite number"),
        ("llama.attention.layer_norm_rms_epsilon", .f32(.nan), "llama.attention.layer_norm_rms_epsilon", "expected a positive finite number"),
        ("llama.context_length", .u32(0), "llama.context_length", "expected a positive integer"),
        ("llama.embedding_length", .i32(-32), "llama.embedding_length", "expected a non-negative integer"),
        ("llama.feed_forward_length", nil, "llama.feed_forward_length", "metadata key is missing"),
        ("general.architecture", .string("falcon"), "general.architecture", "'falcon' is not supported"),
    ]

    @Test(arguments: 0 ..< cases.count)
    func badMetadataIsRefused(index: Int) throws {
        let bad = Self.cases[index]
        let path = GGUFFixtures.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try TinyGGUF.write(try Self.checkpoint(), to: path, changes: [bad.key: bad.value])
        do {
            _ = try ModelLoader.model(for: try Checkpoint.open(path))
            Issue.record("loaded with \(bad.key) = \(String(describing: bad.value))")
        } catch let error as EngineError {
            #expect(error.subject?.hasPrefix(bad.subject) == true, "\(bad.key): \(error)")
            #expect(error.message.contains(bad.phrase), "\(bad.key): \(error)")
        }
    }
}
