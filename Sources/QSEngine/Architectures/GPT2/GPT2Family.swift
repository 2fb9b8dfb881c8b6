extension Architecture {
    package static let gpt2 = Architecture("gpt2")
}

/// GPT-2: its config.json keys (n_embd, n_layer, n_head, n_positions), its modules (Conv1D
/// linears stored in×out, one fused q/k/v projection) and its model (`GPT2Model`).
package enum GPT2Family: ArchitectureDefinition {
    package static let architectures: [Architecture] = [.gpt2]
    package static let isCausal = true
    package static let classPrefixes: [(String, Architecture)] = [("GPT2", .gpt2)]

    package static func className(_ architecture: Architecture) -> String { "GPT2LMHeadModel" }

    /// The GELU variants GPT-2 checkpoints name in `activation_function`.
    static let activations = ["gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu"]

    package static func configuration(_ reader: inout ConfigReader, _ architecture: Architecture) throws -> ModelConfig {
        let hiddenKey = reader.firstPresent("n_embd", "hidden_size")
        let layersKey = reader.firstPresent("n_layer", "num_hidden_layers")
        let headsKey = reader.firstPresent("n_head", "num_attention_heads")
        let positionsKey = reader.firstPresent("n_positions", "max_position_embeddings")
        let hiddenSize = try reader.size(hiddenKey, for: .gpt2)
        let heads = try reader.size(headsKey, for: .gpt2)
        guard hiddenSize % heads == 0 else {
            throw reader.failure(headsKey, "is \(heads), which does not divide \(hiddenKey) (\(hiddenSize))")
        }
        let activation = try reader.string("activation_function") ?? "gelu_new"
        guard activations.contains(activation) else {
            throw reader.failure("activation_function", "'\(activation)' is not supported; qs implements \(activations.joined(separator: ", "))")
        }
        return ModelConfig(
            architecture: .gpt2,
            vocabSize: try reader.size("vocab_size", for: .gpt2),
            hiddenSize: hiddenSize,
            intermediateSize: try reader.size("n_inner", default: 4 * hiddenSize),
            numHiddenLayers: try reader.size(layersKey, for: .gpt2),
            numAttentionHeads: heads,
            maxPositionEmbeddings: try reader.size(positionsKey, default: 1024),
            normEps: try reader.positive("layer_norm_epsilon", default: 1e-5),
            tieWordEmbeddings: try reader.bool("tie_word_embeddings") ?? true,
            attentionBias: true,
            hiddenAct: activation
        )
    }

    package static func configKeys(_ c: ModelConfig) -> [String: StrictJSON] {
        [
            "n_embd": .integer(c.hiddenSize), "n_inner": .integer(c.intermediateSize), "n_layer": .integer(c.numHiddenLayers),
            "n_head": .integer(c.numAttentionHeads), "n_positions": .integer(c.maxPositionEmbeddings),
            "layer_norm_epsilon": .number(c.normEps), "activation_function": .string(c.hiddenAct),
        ]
    }

    package static func modules(_ c: ModelConfig) -> ModuleTable {
        typealias D = ModuleSpec.Dimension
        let hidden = D(c.hiddenSize, "n_embd")
        let inner = D(c.intermediateSize, "n_inner")
        let fused = D(3 * c.hiddenSize, "3 × n_embd")
        let conv1D = LayerKind.linear(.inOut)
        return ModuleTable(
            before: [
                ModuleSpec("embed", "wte", .embedding, weight: [D(c.vocabSize, "vocab_size"), hidden]),
                ModuleSpec("pos_embed", "wpe", .embedding, weight: [D(c.maxPositionEmbeddings, "n_positions"), hidden]),
            ],
            blockPrefix: "h.N.",
            block: [
                ModuleSpec("attn_norm", "ln_1", .norm, weight: [hidden], bias: [hidden]),
                ModuleSpec("attn.qkv", "attn.c_attn", conv1D, weight: [hidden, fused], bias: [fused]),
                ModuleSpec("attn.o", "attn.c_proj", conv1D, weight: [hidden, hidden], bias: [hidden]),
                ModuleSpec("mlp_norm", "ln_2", .norm, weight: [hidden], bias: [hidden]),
                ModuleSpec("mlp.up", "mlp.c_fc", conv1D, weight: [hidden, inner], bias: [inner]),
                ModuleSpec("mlp.down", "mlp.c_proj", conv1D, weight: [inner, hidden], bias: [hidden]),
            ],
            after: [
                ModuleSpec("norm", "ln_f", .norm, weight: [hidden], bias: [hidden]),
                ModuleSpec("head", "lm_head", .head, weight: [D(c.vocabSize, "vocab_size"), hidden], optional: c.tieWordEmbeddings),
            ],
            layerCountKey: "n_layer",
            unprefixed: ["lm_head"],
            optionalPrefixes: ["", "transformer."],
            // The causal-mask buffers older checkpoints saved with the weights.
            ignoredSuffixes: [".attn.bias", ".attn.masked_bias"],
            // The MLP's GELU stands between up and down: nothing folds there.
            smoothing: [
                SmoothingMapping(.norm("attn_norm"), ["attn.qkv"]),
                SmoothingMapping(.linear("attn.qkv"), ["attn.o"]),
                SmoothingMapping(.norm("mlp_norm"), ["mlp.up"]),
            ])
    }

    package static func model(config: ModelConfig, weights: WeightStore, names: LayerNames) throws -> BlockModel {
        try GPT2Model(config: config, weights: weights, names: names)
    }
}
