import Foundation

/// Reading and writing Hugging Face config.json, with transformers' key names and defaults
/// for each architecture (gpt2 spells its sizes n_embd, n_layer, n_head, n_positions).
extension ModelConfig {
    /// Parses config.json. The architecture comes from `model_type`, or else from the first
    /// entry of `architectures`; absent optional keys take transformers' defaults. Errors
    /// name `path` and the key.
    package init(configJSON data: Data, path: String) throws {
        let json: StrictJSON
        do {
            json = try StrictJSON.parse(Array(data))
        } catch {
            throw EngineError(path: path, "config is not valid JSON: \(error)")
        }
        guard let members = json.members else { throw EngineError(path: path, "config is \(json.typeName), expected a JSON object") }
        var reader = ConfigReader(path: path, members: members)
        let architecture = try reader.architecture()
        switch architecture {
        case .llama, .mistral, .qwen2: self = try reader.llamaFamily(architecture)
        case .gpt2: self = try reader.gpt2()
        case .bert: self = try reader.bert()
        }
        if let eos = try reader.tokenIds("eos_token_id") {
            eosTokenId = eos.first
            extraEosTokenIds = Array(eos.dropFirst())
        }
        bosTokenId = try reader.tokenIds("bos_token_id")?.first
        torchDType = try reader.string("torch_dtype") ?? reader.string("dtype")
        reader.consume(["quantization_config", "compression_config", "transformers_version"])
        extraConfigKeys = reader.unused()
    }

    /// Reads config.json from a file.
    package init(configJSONAt path: String) throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw EngineError(path: path, "cannot read: \(error.localizedDescription)")
        }
        try self.init(configJSON: data, path: path)
    }

    /// config.json text that transformers loads: the architecture's own key names, its
    /// `model_type` and `architectures`, `torch_dtype` (float32 unless set), and the kept
    /// extra keys; sorted keys, two-space indent, as `save_pretrained` writes it.
    package func configJSON() -> Data {
        var keys = extraConfigKeys
        keys["model_type"] = .string(architecture.rawValue)
        if keys["architectures"] == nil { keys["architectures"] = .array([.string(architecture.defaultClassName)]) }
        keys["vocab_size"] = .integer(vocabSize)
        keys["torch_dtype"] = .string(torchDType ?? "float32")
        keys["tie_word_embeddings"] = .bool(tieWordEmbeddings)
        keys["bos_token_id"] = bosTokenId.map { .integer($0) } ?? .null
        if extraEosTokenIds.isEmpty {
            keys["eos_token_id"] = eosTokenId.map { .integer($0) } ?? .null
        } else {
            keys["eos_token_id"] = .array(([eosTokenId ?? 0] + extraEosTokenIds).map { .integer($0) })
        }
        switch architecture {
        case .llama, .mistral, .qwen2:
            keys["hidden_size"] = .integer(hiddenSize)
            keys["intermediate_size"] = .integer(intermediateSize)
            keys["num_hidden_layers"] = .integer(numHiddenLayers)
            keys["num_attention_heads"] = .integer(numAttentionHeads)
            keys["num_key_value_heads"] = .integer(numKeyValueHeads)
            keys["head_dim"] = .integer(headDim)
            keys["max_position_embeddings"] = .integer(maxPositionEmbeddings)
            keys["rms_norm_eps"] = .number(normEps)
            keys["rope_theta"] = .number(ropeTheta)
            keys["rope_parameters"] = .object([
                StrictJSON.Member("rope_theta", .number(ropeTheta)), StrictJSON.Member("rope_type", .string("default")),
            ])
            keys["hidden_act"] = .string(hiddenAct)
            if architecture == .llama { keys["attention_bias"] = .bool(attentionBias) }
        case .gpt2:
            keys["n_embd"] = .integer(hiddenSize)
            keys["n_inner"] = .integer(intermediateSize)
            keys["n_layer"] = .integer(numHiddenLayers)
            keys["n_head"] = .integer(numAttentionHeads)
            keys["n_positions"] = .integer(maxPositionEmbeddings)
            keys["layer_norm_epsilon"] = .number(normEps)
            keys["activation_function"] = .string(hiddenAct)
        case .bert:
            keys["hidden_size"] = .integer(hiddenSize)
            keys["intermediate_size"] = .integer(intermediateSize)
            keys["num_hidden_layers"] = .integer(numHiddenLayers)
            keys["num_attention_heads"] = .integer(numAttentionHeads)
            keys["max_position_embeddings"] = .integer(maxPositionEmbeddings)
            keys["layer_norm_eps"] = .number(normEps)
            keys["type_vocab_size"] = .integer(typeVocabSize)
            keys["hidden_act"] = .string(hiddenAct)
        }
        let sorted = keys.sorted { $0.key < $1.key }.map { StrictJSON.Member($0.key, $0.value.sortingKeys()) }
        return Data((StrictJSON.object(sorted).serialized(indent: 2) + "\n").utf8)
    }
}

extension Architecture {
    /// The transformers class written to `architectures` when the source config named none.
    package var defaultClassName: String {
        switch self {
        case .llama: "LlamaForCausalLM"
        case .mistral: "MistralForCausalLM"
        case .qwen2: "Qwen2ForCausalLM"
        case .gpt2: "GPT2LMHeadModel"
        case .bert: "BertModel"
        }
    }

    /// The architecture of a transformers class name such as `Qwen2ForCausalLM` or `BertModel`.
    init?(className: String) {
        let prefixes: [(String, Architecture)] = [
            ("Llama", .llama), ("Mistral", .mistral), ("Qwen2", .qwen2), ("GPT2", .gpt2), ("Bert", .bert),
        ]
        for (prefix, architecture) in prefixes where className.hasPrefix(prefix) {
            let rest = className.dropFirst(prefix.count)
            if rest == "Model" || rest == "LMHeadModel" || rest.hasPrefix("For") {
                self = architecture
                return
            }
        }
        return nil
    }
}

extension StrictJSON {
    /// The same value with every object's members sorted by key.
    func sortingKeys() -> StrictJSON {
        switch self {
        case .object(let members): .object(members.sorted { $0.key < $1.key }.map { Member($0.key, $0.value.sortingKeys()) })
        case .array(let items): .array(items.map { $0.sortingKeys() })
        default: self
        }
    }
}

/// Typed access to config.json keys that records which keys were read, so that the rest
/// can be kept; every error names the file and the key.
private struct ConfigReader {
    let path: String
    let values: [String: StrictJSON]
    var used: Set<String> = []

    init(path: String, members: [StrictJSON.Member]) {
        self.path = path
        values = Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
    }

    func failure(_ key: String, _ message: String) -> EngineError { EngineError(path: path, subject: key, message) }

    mutating func consume(_ keys: [String]) { used.formUnion(keys) }

    func unused() -> [String: StrictJSON] { values.filter { !used.contains($0.key) } }

    /// The value of `key`, nil when absent or null.
    mutating func value(_ key: String) -> StrictJSON? {
        used.insert(key)
        guard let value = values[key], value != .null else { return nil }
        return value
    }

    mutating func int(_ key: String) throws -> Int? {
        guard let value = value(key) else { return nil }
        guard case .integer(let number) = value else { throw failure(key, "is \(value.typeName), expected an integer") }
        return number
    }

    /// A positive integer that must be present.
    mutating func size(_ key: String, for architecture: Architecture) throws -> Int {
        guard let number = try int(key) else { throw failure(key, "is missing; a \(architecture.rawValue) config.json needs it") }
        guard number > 0 else { throw failure(key, "is \(number), expected a positive integer") }
        return number
    }

    /// A positive integer, or `fallback` when absent.
    mutating func size(_ key: String, default fallback: Int) throws -> Int {
        guard let number = try int(key) else { return fallback }
        guard number > 0 else { throw failure(key, "is \(number), expected a positive integer") }
        return number
    }

    mutating func double(_ key: String) throws -> Double? {
        guard let value = value(key) else { return nil }
        switch value {
        case .integer(let number): return Double(number)
        case .number(let number): return number
        default: throw failure(key, "is \(value.typeName), expected a number")
        }
    }

    /// A positive number, or `fallback` when absent.
    mutating func positive(_ key: String, default fallback: Double) throws -> Double {
        guard let number = try double(key) else { return fallback }
        guard number > 0, number.isFinite else { throw failure(key, "is \(number), expected a positive number") }
        return number
    }

    mutating func bool(_ key: String) throws -> Bool? {
        guard let value = value(key) else { return nil }
        guard case .bool(let flag) = value else { throw failure(key, "is \(value.typeName), expected true or false") }
        return flag
    }

    mutating func string(_ key: String) throws -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let text) = value else { throw failure(key, "is \(value.typeName), expected a string") }
        return text
    }

    /// An integer or a list of integers (eos_token_id may be either).
    mutating func tokenIds(_ key: String) throws -> [Int]? {
        guard let value = value(key) else { return nil }
        switch value {
        case .integer(let id): return [id]
        case .array(let items):
            var ids: [Int] = []
            for item in items {
                guard case .integer(let id) = item else { throw failure(key, "has \(item.typeName) in its list, expected integers") }
                ids.append(id)
            }
            return ids.isEmpty ? nil : ids
        default: throw failure(key, "is \(value.typeName), expected an integer or a list of integers")
        }
    }

    mutating func architecture() throws -> Architecture {
        let supported = Architecture.allCases.map(\.rawValue).joined(separator: ", ")
        if let modelType = try string("model_type") {
            guard let architecture = Architecture(rawValue: modelType) else {
                throw failure("model_type", "unsupported model_type '\(modelType)'; qs supports \(supported)")
            }
            return architecture
        }
        guard let classes = values["architectures"], case .array(let names) = classes, case .string(let first)? = names.first else {
            throw failure("model_type", "is missing, and there is no 'architectures' list to tell the architecture; qs supports \(supported)")
        }
        guard let architecture = Architecture(className: first) else {
            throw failure("architectures", "unsupported architecture '\(first)'; qs supports \(supported)")
        }
        return architecture
    }

    /// Rejects rotary scaling other than the plain one (llama3, yarn, linear, dynamic, ...),
    /// which qs does not implement, rather than computing wrong positions silently.
    func checkRopeType(_ value: StrictJSON?, key: String) throws {
        guard let value, value != .null else { return }
        guard value.members != nil else { throw failure(key, "is \(value.typeName), expected an object") }
        let type = value["rope_type"] ?? value["type"]
        switch type {
        case nil, .null?, .string("default")?: return
        case .string(let name)?: throw failure(key, "rope_type '\(name)' is not supported; qs implements only the default rotary embedding")
        case let other?: throw failure(key, "rope_type is \(other.typeName), expected a string")
        }
    }

    mutating func llamaFamily(_ architecture: Architecture) throws -> ModelConfig {
        let hiddenSize = try size("hidden_size", for: architecture)
        let heads = try size("num_attention_heads", for: architecture)
        let kvHeads = try size("num_key_value_heads", default: heads)
        guard heads % kvHeads == 0 else {
            throw failure("num_key_value_heads", "is \(kvHeads), which does not divide num_attention_heads (\(heads))")
        }
        let headDim = try int("head_dim")
        if let headDim, headDim <= 0 { throw failure("head_dim", "is \(headDim), expected a positive integer") }
        if headDim == nil, hiddenSize % heads != 0 {
            throw failure("num_attention_heads", "is \(heads), which does not divide hidden_size (\(hiddenSize)) and head_dim is not given")
        }
        let ropeParameters = value("rope_parameters")
        try checkRopeType(ropeParameters, key: "rope_parameters")
        try checkRopeType(value("rope_scaling"), key: "rope_scaling")
        var ropeTheta = try double("rope_theta")
        if ropeTheta == nil, let ropeParameters, let theta = ropeParameters["rope_theta"] {
            switch theta {
            case .integer(let number): ropeTheta = Double(number)
            case .number(let number): ropeTheta = number
            default: throw failure("rope_parameters", "rope_theta is \(theta.typeName), expected a number")
            }
        }
        if let theta = ropeTheta, !(theta > 0 && theta.isFinite) { throw failure("rope_theta", "is \(theta), expected a positive number") }
        let defaultPositions = switch architecture {
        case .mistral: 4096 * 32
        case .qwen2: 32768
        default: 2048
        }
        return ModelConfig(
            architecture: architecture,
            vocabSize: try size("vocab_size", for: architecture),
            hiddenSize: hiddenSize,
            intermediateSize: try size("intermediate_size", for: architecture),
            numHiddenLayers: try size("num_hidden_layers", for: architecture),
            numAttentionHeads: heads,
            numKeyValueHeads: kvHeads,
            headDim: headDim,
            maxPositionEmbeddings: try size("max_position_embeddings", default: defaultPositions),
            normEps: try positive("rms_norm_eps", default: 1e-6),
            ropeTheta: ropeTheta ?? 10000,
            tieWordEmbeddings: try bool("tie_word_embeddings") ?? false,
            attentionBias: architecture == .qwen2 ? true : (try bool("attention_bias") ?? false),
            hiddenAct: try string("hidden_act") ?? "silu"
        )
    }

    /// The first of `keys` that is present (gpt2 configs may also use the generic names);
    /// all of them count as read.
    mutating func firstPresent(_ keys: String...) -> String {
        used.formUnion(keys)
        for key in keys where values[key] != nil && values[key] != .null { return key }
        return keys[0]
    }

    mutating func gpt2() throws -> ModelConfig {
        let hiddenKey = firstPresent("n_embd", "hidden_size")
        let layersKey = firstPresent("n_layer", "num_hidden_layers")
        let headsKey = firstPresent("n_head", "num_attention_heads")
        let positionsKey = firstPresent("n_positions", "max_position_embeddings")
        let hiddenSize = try size(hiddenKey, for: .gpt2)
        let heads = try size(headsKey, for: .gpt2)
        guard hiddenSize % heads == 0 else {
            throw failure(headsKey, "is \(heads), which does not divide \(hiddenKey) (\(hiddenSize))")
        }
        return ModelConfig(
            architecture: .gpt2,
            vocabSize: try size("vocab_size", for: .gpt2),
            hiddenSize: hiddenSize,
            intermediateSize: try size("n_inner", default: 4 * hiddenSize),
            numHiddenLayers: try size(layersKey, for: .gpt2),
            numAttentionHeads: heads,
            maxPositionEmbeddings: try size(positionsKey, default: 1024),
            normEps: try positive("layer_norm_epsilon", default: 1e-5),
            tieWordEmbeddings: try bool("tie_word_embeddings") ?? true,
            attentionBias: true,
            hiddenAct: try string("activation_function") ?? "gelu_new"
        )
    }

    mutating func bert() throws -> ModelConfig {
        let hiddenSize = try size("hidden_size", for: .bert)
        let heads = try size("num_attention_heads", for: .bert)
        guard hiddenSize % heads == 0 else {
            throw failure("num_attention_heads", "is \(heads), which does not divide hidden_size (\(hiddenSize))")
        }
        return ModelConfig(
            architecture: .bert,
            vocabSize: try size("vocab_size", for: .bert),
            hiddenSize: hiddenSize,
            intermediateSize: try size("intermediate_size", for: .bert),
            numHiddenLayers: try size("num_hidden_layers", for: .bert),
            numAttentionHeads: heads,
            maxPositionEmbeddings: try size("max_position_embeddings", default: 512),
            normEps: try positive("layer_norm_eps", default: 1e-12),
            tieWordEmbeddings: try bool("tie_word_embeddings") ?? true,
            attentionBias: true,
            hiddenAct: try string("hidden_act") ?? "gelu",
            typeVocabSize: try size("type_vocab_size", default: 2)
        )
    }
}
