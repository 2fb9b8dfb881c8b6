/// The correspondence between GGUF tensor names and Hugging Face checkpoint names for the
/// llama family (llama, mistral, qwen2 all use the same GGUF names).
package enum GGUFTensorNames {
    /// GGUF block tensor stems and their Hugging Face module paths inside `model.layers.N`.
    static let blockModules: [(gguf: String, huggingFace: String)] = [
        ("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"), ("attn_v", "self_attn.v_proj"),
        ("attn_output", "self_attn.o_proj"), ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"),
        ("ffn_down", "mlp.down_proj"), ("attn_norm", "input_layernorm"), ("ffn_norm", "post_attention_layernorm"),
    ]
    static let topLevel: [(gguf: String, huggingFace: String)] = [
        ("token_embd", "model.embed_tokens"), ("output_norm", "model.norm"), ("output", "lm_head"),
    ]

    /// The Hugging Face name of a llama-family GGUF tensor, or nil when it has none.
    package static func huggingFace(fromGGUF name: String) -> String? {
        guard let dot = name.lastIndex(of: "."), ["weight", "bias"].contains(name[name.index(after: dot)...]) else {
            return nil
        }
        let stem = name[..<dot]
        let suffix = name[dot...]
        if let match = topLevel.first(where: { $0.gguf == stem }) { return match.huggingFace + suffix }
        let parts = stem.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]), layer >= 0, String(layer) == parts[1],
            let match = blockModules.first(where: { $0.gguf == parts[2] })
        else { return nil }
        return "model.layers.\(layer).\(match.huggingFace)\(suffix)"
    }

    /// The GGUF name of a llama-family Hugging Face tensor, or nil when it has none.
    package static func gguf(fromHuggingFace name: String) -> String? {
        guard let dot = name.lastIndex(of: "."), ["weight", "bias"].contains(name[name.index(after: dot)...]) else {
            return nil
        }
        let stem = name[..<dot]
        let suffix = name[dot...]
        if let match = topLevel.first(where: { $0.huggingFace == stem }) { return match.gguf + suffix }
        let prefix = "model.layers."
        guard stem.hasPrefix(prefix) else { return nil }
        let rest = stem.dropFirst(prefix.count)
        guard let layerEnd = rest.firstIndex(of: "."), let layer = Int(rest[..<layerEnd]), layer >= 0,
            String(layer) == rest[..<layerEnd],
            let match = blockModules.first(where: { $0.huggingFace == rest[rest.index(after: layerEnd)...] })
        else { return nil }
        return "blk.\(layer).\(match.gguf)\(suffix)"
    }
}

extension GGUFFile {
    /// The architectures whose tensors get Hugging Face names.
    static let huggingFaceNamedArchitectures: Set<String> = ["llama", "mistral", "qwen2"]

    /// The tensors as a Hugging Face checkpoint holds them: llama-family names mapped to
    /// Hugging Face names, shapes outermost first, and llama q/k projections marked for
    /// undoing the rotary row permutation of convert_hf_to_gguf.py (`LlamaModel.permute`).
    /// Tensors of other architectures, and names with no counterpart, keep their GGUF names.
    package func storedTensors() throws -> [StoredTensor] {
        let architecture = self.architecture ?? ""
        let renames = Self.huggingFaceNamedArchitectures.contains(architecture)
        let permutes = architecture == "llama"
        var headCount: Int?
        var keyValueHeadCount: Int?
        if permutes {
            headCount = try positiveInteger("\(architecture).attention.head_count")
            keyValueHeadCount =
                try self["\(architecture).attention.head_count_kv"] == nil
                ? headCount : positiveInteger("\(architecture).attention.head_count_kv")
        }
        var seen: Set<String> = []
        return try tensors.map { info in
            guard let dtype = info.type.dtype else {
                throw EngineError(
                    path: path, subject: info.name,
                    "tensor type \(info.type.name) (ggml type id \(info.type.rawValue)) is not supported "
                        + "(expected F32, F16, BF16, F64, I8 to I64, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 or Q2_K to Q6_K)")
            }
            let name = renames ? GGUFTensorNames.huggingFace(fromGGUF: info.name) ?? info.name : info.name
            guard seen.insert(name).inserted else {
                throw EngineError(path: path, subject: info.name, "maps to the name '\(name)', which another tensor already has")
            }
            var heads: Int?
            if permutes, info.name.hasPrefix("blk.") {
                if info.name.hasSuffix(".attn_q.weight") || info.name.hasSuffix(".attn_q.bias") {
                    heads = headCount
                } else if info.name.hasSuffix(".attn_k.weight") || info.name.hasSuffix(".attn_k.bias") {
                    heads = keyValueHeadCount
                }
            }
            let shape = info.shape
            if let heads, !Dequantize.splitsIntoRotaryPairs(rows: shape[0], heads: heads) {
                throw EngineError(
                    path: path, subject: info.name,
                    "has \(shape[0]) rows, which do not split into \(heads) heads of rotary pairs (expected a positive multiple of twice the head count)"
                )
            }
            return StoredTensor(
                name: name, storedName: info.name, dtype: dtype, shape: shape, file: file, offset: info.fileOffset,
                byteCount: info.byteCount, rotaryPermutationHeads: heads)
        }
    }

    /// The model configuration from the `<architecture>.*` and `tokenizer.ggml.*` metadata.
    package func modelConfig() throws -> ModelConfig {
        guard let name = architecture else {
            throw EngineError(path: path, subject: "general.architecture", "is missing (expected the architecture name)")
        }
        let architecture: Architecture
        switch name {
        case "llama": architecture = .llama
        case "mistral": architecture = .mistral
        case "qwen2": architecture = .qwen2
        default:
            throw EngineError(
                path: path, subject: "general.architecture", "architecture '\(name)' is not supported (expected llama, mistral or qwen2)")
        }
        let prefix = name + "."
        let heads = try positiveInteger(prefix + "attention.head_count")
        let hiddenSize = try positiveInteger(prefix + "embedding_length")
        let keyValueHeads = try optional(prefix + "attention.head_count_kv") { try positiveInteger($0) } ?? heads
        let headDim = try optional(prefix + "attention.key_length") { try positiveInteger($0) }
        let vocabSize: Int
        if let tokens = self["tokenizer.ggml.tokens"]?.array {
            vocabSize = tokens.count
        } else if let size = try optional(prefix + "vocab_size", { try positiveInteger($0) }) {
            vocabSize = size
        } else if let embedding = tensor(named: "token_embd.weight"), embedding.dimensions.count == 2 {
            vocabSize = embedding.dimensions[1]
        } else {
            throw EngineError(
                path: path, subject: "tokenizer.ggml.tokens",
                "is missing, and so are \(prefix)vocab_size and token_embd.weight (expected one of them for the vocabulary size)")
        }
        return ModelConfig(
            architecture: architecture,
            vocabSize: vocabSize,
            hiddenSize: hiddenSize,
            intermediateSize: try positiveInteger(prefix + "feed_forward_length"),
            numHiddenLayers: try positiveInteger(prefix + "block_count"),
            numAttentionHeads: heads,
            numKeyValueHeads: keyValueHeads,
            headDim: headDim,
            maxPositionEmbeddings: try positiveInteger(prefix + "context_length"),
            normEps: try number(prefix + "attention.layer_norm_rms_epsilon"),
            ropeTheta: try optional(prefix + "rope.freq_base") { try number($0) } ?? 10000,
            tieWordEmbeddings: tensor(named: "output.weight") == nil,
            attentionBias: tensor(named: "blk.0.attn_q.bias") != nil,
            hiddenAct: "silu",
            bosTokenId: try optional("tokenizer.ggml.bos_token_id") { try nonNegativeInteger($0) },
            eosTokenId: try optional("tokenizer.ggml.eos_token_id") { try nonNegativeInteger($0) })
    }

    private func optional<T>(_ key: String, _ read: (String) throws -> T) throws -> T? {
        self[key] == nil ? nil : try read(key)
    }

    private func nonNegativeInteger(_ key: String) throws -> Int {
        guard let value = self[key] else { throw EngineError(path: path, subject: key, "metadata key is missing (expected an integer)") }
        guard let integer = value.int, integer >= 0 else {
            throw EngineError(path: path, subject: key, "is \(value) (expected a non-negative integer)")
        }
        return integer
    }

    private func positiveInteger(_ key: String) throws -> Int {
        let value = try nonNegativeInteger(key)
        guard value > 0 else { throw EngineError(path: path, subject: key, "is 0 (expected a positive integer)") }
        return value
    }

    private func number(_ key: String) throws -> Double {
        guard let value = self[key] else { throw EngineError(path: path, subject: key, "metadata key is missing (expected a number)") }
        guard let number = value.double, number.isFinite else {
            throw EngineError(path: path, subject: key, "is \(value) (expected a finite number)")
        }
        return number
    }
}
