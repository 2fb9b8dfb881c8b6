extension Architecture {
    package static let llama = Architecture("llama")
    package static let mistral = Architecture("mistral")
    package static let qwen2 = Architecture("qwen2")
}

/// The llama family (llama, mistral, qwen2, SmolLM2): its config.json keys, its modules, its
/// GGUF names and metadata, and its model (`LlamaModel`).
package enum LlamaFamily: ArchitectureDefinition {
    package static let architectures: [Architecture] = [.llama, .mistral, .qwen2]
    package static let isCausal = true
    package static let classPrefixes: [(String, Architecture)] = [("Llama", .llama), ("Mistral", .mistral), ("Qwen2", .qwen2)]

    package static func className(_ architecture: Architecture) -> String {
        switch architecture {
        case .mistral: "MistralForCausalLM"
        case .qwen2: "Qwen2ForCausalLM"
        default: "LlamaForCausalLM"
        }
    }

    // MARK: config.json

    package static func configuration(_ reader: inout ConfigReader, _ architecture: Architecture) throws -> ModelConfig {
        let hiddenSize = try reader.size("hidden_size", for: architecture)
        let heads = try reader.size("num_attention_heads", for: architecture)
        let kvHeads = try reader.size("num_key_value_heads", default: heads)
        guard heads % kvHeads == 0 else {
            throw reader.failure("num_key_value_heads", "is \(kvHeads), which does not divide num_attention_heads (\(heads))")
        }
        let headDim = try reader.int("head_dim").map { try reader.checkedSize($0, "head_dim") }
        if headDim == nil, hiddenSize % heads != 0 {
            throw reader.failure("num_attention_heads", "is \(heads), which does not divide hidden_size (\(hiddenSize)) and head_dim is not given")
        }
        let ropeParameters = reader.value("rope_parameters")
        try reader.checkRopeType(ropeParameters, key: "rope_parameters")
        try reader.checkRopeType(reader.value("rope_scaling"), key: "rope_scaling")
        var ropeTheta = try reader.double("rope_theta")
        if ropeTheta == nil, let ropeParameters, let theta = ropeParameters["rope_theta"] {
            switch theta {
            case .integer(let number): ropeTheta = Double(number)
            case .number(let number): ropeTheta = number
            default: throw reader.failure("rope_parameters", "rope_theta is \(theta.typeName), expected a number")
            }
        }
        if let theta = ropeTheta, !(theta > 0 && theta.isFinite) { throw reader.failure("rope_theta", "is \(theta), expected a positive number") }
        let defaultPositions = switch architecture {
        case .mistral: 4096 * 32
        case .qwen2: 32768
        default: 2048
        }
        let hiddenAct = try reader.string("hidden_act") ?? "silu"
        guard Kernels.Activation(name: hiddenAct) != nil else {
            throw reader.failure("hidden_act", "'\(hiddenAct)' is not supported; qs implements \(Kernels.Activation.names.joined(separator: ", "))")
        }
        var config = ModelConfig(
            architecture: architecture,
            vocabSize: try reader.size("vocab_size", for: architecture),
            hiddenSize: hiddenSize,
            intermediateSize: try reader.size("intermediate_size", for: architecture),
            numHiddenLayers: try reader.size("num_hidden_layers", for: architecture),
            numAttentionHeads: heads,
            numKeyValueHeads: kvHeads,
            headDim: headDim,
            maxPositionEmbeddings: try reader.size("max_position_embeddings", default: defaultPositions),
            normEps: try reader.positive("rms_norm_eps", default: 1e-6),
            ropeTheta: ropeTheta ?? 10000,
            tieWordEmbeddings: try reader.bool("tie_word_embeddings") ?? false,
            attentionBias: architecture == .qwen2 ? true : (try reader.bool("attention_bias") ?? false),
            hiddenAct: hiddenAct
        )
        if architecture == .llama { config.mlpBias = try reader.bool("mlp_bias") ?? false }
        return config
    }

    package static func configKeys(_ c: ModelConfig) -> [String: StrictJSON] {
        var keys: [String: StrictJSON] = [
            "hidden_size": .integer(c.hiddenSize), "intermediate_size": .integer(c.intermediateSize),
            "num_hidden_layers": .integer(c.numHiddenLayers), "num_attention_heads": .integer(c.numAttentionHeads),
            "num_key_value_heads": .integer(c.numKeyValueHeads), "head_dim": .integer(c.headDim),
            "max_position_embeddings": .integer(c.maxPositionEmbeddings), "rms_norm_eps": .number(c.normEps),
            "rope_theta": .number(c.ropeTheta),
            "rope_parameters": .object([
                StrictJSON.Member("rope_theta", .number(c.ropeTheta)), StrictJSON.Member("rope_type", .string("default")),
            ]),
            "hidden_act": .string(c.hiddenAct),
        ]
        if c.architecture == .llama {
            keys["attention_bias"] = .bool(c.attentionBias)
            keys["mlp_bias"] = .bool(c.mlpBias)
        }
        return keys
    }

    // MARK: Modules

    package static func modules(_ c: ModelConfig) -> ModuleTable {
        typealias D = ModuleSpec.Dimension
        let hidden = D(c.hiddenSize, "hidden_size")
        let queries = D(c.numAttentionHeads * c.headDim, "num_attention_heads × head_dim")
        let keyValues = D(c.numKeyValueHeads * c.headDim, "num_key_value_heads × head_dim")
        let inner = D(c.intermediateSize, "intermediate_size")
        let vocab = D(c.vocabSize, "vocab_size")
        // qwen2 puts biases on q, k and v; llama's attention_bias on all four; mlp_bias on the MLP.
        let qkvBias = c.attentionBias
        let outputBias = c.attentionBias && c.architecture == .llama
        let linear = LayerKind.linear(.outIn)
        return ModuleTable(
            before: [ModuleSpec("embed", "model.embed_tokens", .embedding, weight: [vocab, hidden])],
            blockPrefix: "model.layers.N.",
            block: [
                ModuleSpec("attn_norm", "input_layernorm", .norm, weight: [hidden]),
                ModuleSpec("attn.q", "self_attn.q_proj", linear, weight: [queries, hidden], bias: qkvBias ? [queries] : nil),
                ModuleSpec("attn.k", "self_attn.k_proj", linear, weight: [keyValues, hidden], bias: qkvBias ? [keyValues] : nil, sharesInputWith: "attn.q"),
                ModuleSpec("attn.v", "self_attn.v_proj", linear, weight: [keyValues, hidden], bias: qkvBias ? [keyValues] : nil, sharesInputWith: "attn.q"),
                ModuleSpec("attn.o", "self_attn.o_proj", linear, weight: [hidden, queries], bias: outputBias ? [hidden] : nil),
                ModuleSpec("mlp_norm", "post_attention_layernorm", .norm, weight: [hidden]),
                ModuleSpec("mlp.gate", "mlp.gate_proj", linear, weight: [inner, hidden], bias: c.mlpBias ? [inner] : nil),
                ModuleSpec("mlp.up", "mlp.up_proj", linear, weight: [inner, hidden], bias: c.mlpBias ? [inner] : nil, sharesInputWith: "mlp.gate"),
                ModuleSpec("mlp.down", "mlp.down_proj", linear, weight: [hidden, inner], bias: c.mlpBias ? [hidden] : nil),
            ],
            after: [
                ModuleSpec("norm", "model.norm", .norm, weight: [hidden]),
                // A tied head multiplies by the token embedding; a checkpoint may still carry lm_head.
                ModuleSpec("head", "lm_head", .head, weight: [vocab, hidden], optional: c.tieWordEmbeddings),
            ],
            unprefixed: ["lm_head"],
            ignoredSuffixes: [".rotary_emb.inv_freq"],
            // v's rows feed o's columns only without grouped-query attention (a key/value head
            // shared by several query heads would need one factor for several columns of o).
            smoothing: [
                SmoothingMapping(.norm("attn_norm"), ["attn.q", "attn.k", "attn.v"]),
            ] + (c.numKeyValueHeads == c.numAttentionHeads ? [SmoothingMapping(.linear("attn.v"), ["attn.o"])] : []) + [
                SmoothingMapping(.norm("mlp_norm"), ["mlp.gate", "mlp.up"]),
                SmoothingMapping(.linear("mlp.up"), ["mlp.down"]),
            ])
    }

    // MARK: GGUF

    package static let ggufArchitectures: [String: Architecture] = ["llama": .llama, "mistral": .mistral, "qwen2": .qwen2]

    package static func ggufNaming(_ ggufArchitecture: String) -> GGUFNaming? {
        guard ggufArchitectures[ggufArchitecture] != nil else { return nil }
        // convert_hf_to_gguf.py permutes the rows of q and k for the llama architecture only.
        let heads = "\(ggufArchitecture).attention.head_count"
        let permuted = ggufArchitecture == "llama" ? ["attn_q": [heads], "attn_k": [heads + "_kv", heads]] : [:]
        return GGUFNaming(
            topLevel: [("token_embd", "model.embed_tokens"), ("output_norm", "model.norm"), ("output", "lm_head")],
            block: [
                ("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"), ("attn_v", "self_attn.v_proj"),
                ("attn_output", "self_attn.o_proj"), ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"),
                ("ffn_down", "mlp.down_proj"), ("attn_norm", "input_layernorm"), ("ffn_norm", "post_attention_layernorm"),
            ],
            blockPrefix: "model.layers.N.", permutedStems: permuted)
    }

    package static func configuration(gguf file: GGUFFile, _ architecture: Architecture) throws -> ModelConfig {
        let prefix = (file.architecture ?? architecture.rawValue) + "."
        let heads = try file.positiveInteger(prefix + "attention.head_count")
        let hiddenSize = try file.positiveInteger(prefix + "embedding_length")
        let keyValueHeads = try file.optional(prefix + "attention.head_count_kv") { try file.positiveInteger($0) } ?? heads
        guard heads % keyValueHeads == 0 else {
            throw EngineError(
                path: file.path, subject: prefix + "attention.head_count_kv",
                "is \(keyValueHeads), which does not divide \(prefix)attention.head_count (\(heads))")
        }
        let headDim = try file.optional(prefix + "attention.key_length") { try file.positiveInteger($0) }
        if headDim == nil, hiddenSize % heads != 0 {
            throw EngineError(
                path: file.path, subject: prefix + "attention.head_count",
                "is \(heads), which does not divide \(prefix)embedding_length (\(hiddenSize)) and \(prefix)attention.key_length is not given")
        }
        let vocabSize: Int
        if let tokens = file["tokenizer.ggml.tokens"]?.array {
            vocabSize = tokens.count
        } else if let size = try file.optional(prefix + "vocab_size", { try file.positiveInteger($0) }) {
            vocabSize = size
        } else if let embedding = file.tensor(named: "token_embd.weight"), embedding.dimensions.count == 2 {
            vocabSize = embedding.dimensions[1]
        } else {
            throw EngineError(
                path: file.path, subject: "tokenizer.ggml.tokens",
                "is missing, and so are \(prefix)vocab_size and token_embd.weight (expected one of them for the vocabulary size)")
        }
        guard vocabSize > 0 else { throw EngineError(path: file.path, subject: "tokenizer.ggml.tokens", "is empty (expected the vocabulary)") }
        return ModelConfig(
            architecture: architecture,
            vocabSize: vocabSize,
            hiddenSize: hiddenSize,
            intermediateSize: try file.positiveInteger(prefix + "feed_forward_length"),
            numHiddenLayers: try file.positiveInteger(prefix + "block_count"),
            numAttentionHeads: heads,
            numKeyValueHeads: keyValueHeads,
            headDim: headDim,
            maxPositionEmbeddings: try file.positiveInteger(prefix + "context_length"),
            normEps: try file.positiveNumber(prefix + "attention.layer_norm_rms_epsilon"),
            ropeTheta: try file.optional(prefix + "rope.freq_base") { try file.positiveNumber($0) } ?? 10000,
            tieWordEmbeddings: file.tensor(named: "output.weight") == nil,
            attentionBias: file.tensor(named: "blk.0.attn_q.bias") != nil,
            hiddenAct: "silu",
            bosTokenId: try file.optional("tokenizer.ggml.bos_token_id") { try file.nonNegativeInteger($0) },
            eosTokenId: try file.optional("tokenizer.ggml.eos_token_id") { try file.nonNegativeInteger($0) })
    }

    package static func model(config: ModelConfig, weights: WeightStore, names: LayerNames) throws -> BlockModel {
        try LlamaModel(config: config, weights: weights, names: names)
    }
}
