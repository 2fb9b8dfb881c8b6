extension Architecture {
    package static let bert = Architecture("bert")
}

/// BERT encoders: their config.json keys, their modules and their model (`BERTModel`).
package enum BERTFamily: ArchitectureDefinition {
    package static let architectures: [Architecture] = [.bert]
    package static let isCausal = false
    package static let classPrefixes: [(String, Architecture)] = [("Bert", .bert)]

    package static func className(_ architecture: Architecture) -> String { "BertModel" }

    package static func configuration(_ reader: inout ConfigReader, _ architecture: Architecture) throws -> ModelConfig {
        let hiddenSize = try reader.size("hidden_size", for: .bert)
        let heads = try reader.size("num_attention_heads", for: .bert)
        guard hiddenSize % heads == 0 else {
            throw reader.failure("num_attention_heads", "is \(heads), which does not divide hidden_size (\(hiddenSize))")
        }
        let hiddenAct = try reader.string("hidden_act") ?? "gelu"
        guard Kernels.Activation(name: hiddenAct) != nil else {
            throw reader.failure("hidden_act", "'\(hiddenAct)' is not supported; qs implements \(Kernels.Activation.names.joined(separator: ", "))")
        }
        // Relative position embeddings (relative_key, relative_key_query) change attention itself.
        if let positions = try reader.string("position_embedding_type"), positions != "absolute" {
            throw reader.failure("position_embedding_type", "'\(positions)' is not supported; qs implements absolute position embeddings")
        }
        if try reader.bool("is_decoder") == true {
            throw reader.failure("is_decoder", "is true; qs runs BERT as an encoder only")
        }
        return ModelConfig(
            architecture: .bert,
            vocabSize: try reader.size("vocab_size", for: .bert),
            hiddenSize: hiddenSize,
            intermediateSize: try reader.size("intermediate_size", for: .bert),
            numHiddenLayers: try reader.size("num_hidden_layers", for: .bert),
            numAttentionHeads: heads,
            maxPositionEmbeddings: try reader.size("max_position_embeddings", default: 512),
            normEps: try reader.positive("layer_norm_eps", default: 1e-12),
            tieWordEmbeddings: try reader.bool("tie_word_embeddings") ?? true,
            attentionBias: true,
            hiddenAct: hiddenAct,
            typeVocabSize: try reader.size("type_vocab_size", default: 2)
        )
    }

    package static func configKeys(_ c: ModelConfig) -> [String: StrictJSON] {
        [
            "hidden_size": .integer(c.hiddenSize), "intermediate_size": .integer(c.intermediateSize),
            "num_hidden_layers": .integer(c.numHiddenLayers), "num_attention_heads": .integer(c.numAttentionHeads),
            "max_position_embeddings": .integer(c.maxPositionEmbeddings), "layer_norm_eps": .number(c.normEps),
            "type_vocab_size": .integer(c.typeVocabSize), "hidden_act": .string(c.hiddenAct),
        ]
    }

    package static func modules(_ c: ModelConfig) -> ModuleTable {
        typealias D = ModuleSpec.Dimension
        let hidden = D(c.hiddenSize, "hidden_size")
        let inner = D(c.intermediateSize, "intermediate_size")
        let linear = LayerKind.linear(.outIn)
        return ModuleTable(
            before: [
                ModuleSpec("embed", "embeddings.word_embeddings", .embedding, weight: [D(c.vocabSize, "vocab_size"), hidden]),
                ModuleSpec("pos_embed", "embeddings.position_embeddings", .embedding, weight: [D(c.maxPositionEmbeddings, "max_position_embeddings"), hidden]),
                // transformers always builds the token-type table; a checkpoint without it would be
                // computed without what transformers adds (its fresh random rows).
                ModuleSpec("type_embed", "embeddings.token_type_embeddings", .embedding, weight: [D(c.typeVocabSize, "type_vocab_size"), hidden]),
                ModuleSpec("embed_norm", "embeddings.LayerNorm", .norm, weight: [hidden], bias: [hidden]),
            ],
            blockPrefix: "encoder.layer.N.",
            block: [
                ModuleSpec("attn.q", "attention.self.query", linear, weight: [hidden, hidden], bias: [hidden]),
                ModuleSpec("attn.k", "attention.self.key", linear, weight: [hidden, hidden], bias: [hidden], sharesInputWith: "attn.q"),
                ModuleSpec("attn.v", "attention.self.value", linear, weight: [hidden, hidden], bias: [hidden], sharesInputWith: "attn.q"),
                ModuleSpec("attn.o", "attention.output.dense", linear, weight: [hidden, hidden], bias: [hidden]),
                ModuleSpec("attn_norm", "attention.output.LayerNorm", .norm, weight: [hidden], bias: [hidden]),
                ModuleSpec("mlp.up", "intermediate.dense", linear, weight: [inner, hidden], bias: [inner]),
                ModuleSpec("mlp.down", "output.dense", linear, weight: [hidden, inner], bias: [hidden]),
                ModuleSpec("mlp_norm", "output.LayerNorm", .norm, weight: [hidden], bias: [hidden]),
            ],
            after: [ModuleSpec("pooler", "pooler.dense", linear, weight: [hidden, hidden], bias: [hidden], optional: true)],
            optionalPrefixes: ["", "bert."],
            ignoredSuffixes: ["embeddings.position_ids"],
            // Post-norm blocks: q/k/v and up read a LayerNorm whose output is also the residual
            // stream, so only v → o folds.
            smoothing: [SmoothingMapping(.linear("attn.v"), ["attn.o"])])
    }

    package static func model(config: ModelConfig, weights: WeightStore, names: LayerNames) throws -> BlockModel {
        try BERTModel(config: config, weights: weights, names: names)
    }
}
