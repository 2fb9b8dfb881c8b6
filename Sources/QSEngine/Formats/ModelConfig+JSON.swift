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
        self = try architecture.definition.configuration(&reader, architecture)
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
        try self.init(configJSON: try FileAccess.contents(path, expected: "config.json", limit: 64 << 20), path: path)
    }

    /// config.json text that transformers loads: the architecture's own key names, its
    /// `model_type` and `architectures`, `torch_dtype` (float32 unless set), and the kept
    /// extra keys; sorted keys, two-space indent, as `save_pretrained` writes it.
    package func configJSON() -> Data {
        var keys = extraConfigKeys
        keys["model_type"] = .string(architecture.rawValue)
        if keys["architectures"] == nil { keys["architectures"] = .array([.string(architecture.definition.className(architecture))]) }
        keys["vocab_size"] = .integer(vocabSize)
        keys["torch_dtype"] = .string(torchDType ?? "float32")
        keys["tie_word_embeddings"] = .bool(tieWordEmbeddings)
        keys["bos_token_id"] = bosTokenId.map { .integer($0) } ?? .null
        if extraEosTokenIds.isEmpty {
            keys["eos_token_id"] = eosTokenId.map { .integer($0) } ?? .null
        } else {
            keys["eos_token_id"] = .array(([eosTokenId ?? 0] + extraEosTokenIds).map { .integer($0) })
        }
        keys.merge(architecture.definition.configKeys(self)) { _, own in own }
        let sorted = keys.sorted { $0.key < $1.key }.map { StrictJSON.Member($0.key, $0.value.sortingKeys()) }
        return Data((StrictJSON.object(sorted).serialized(indent: 2) + "\n").utf8)
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
package struct ConfigReader {
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
        return try checkedSize(number, key)
    }

    /// A positive integer, or `fallback` when absent.
    mutating func size(_ key: String, default fallback: Int) throws -> Int {
        guard let number = try int(key) else { return fallback }
        return try checkedSize(number, key)
    }

    /// A size in 1 ... `ModelConfig.maxSize`, so that the products the shapes are made of
    /// (heads × head_dim, 3 × hidden) cannot overflow.
    func checkedSize(_ number: Int, _ key: String) throws -> Int {
        guard number > 0 else { throw failure(key, "is \(number), expected a positive integer") }
        guard number <= ModelConfig.maxSize else { throw failure(key, "is \(number), larger than any model's (at most \(ModelConfig.maxSize))") }
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
        guard let architecture = ArchitectureRegistry.architecture(className: first) else {
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

    /// The first of `keys` that is present (gpt2 configs may also use the generic names);
    /// all of them count as read.
    mutating func firstPresent(_ keys: String...) -> String {
        used.formUnion(keys)
        for key in keys where values[key] != nil && values[key] != .null { return key }
        return keys[0]
    }
}
