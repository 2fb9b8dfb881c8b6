extension GGUFNaming {
    /// The Hugging Face name of a GGUF tensor, or nil when it has none.
    package func huggingFace(fromGGUF name: String) -> String? {
        guard let dot = name.lastIndex(of: "."), ["weight", "bias"].contains(name[name.index(after: dot)...]) else {
            return nil
        }
        let stem = name[..<dot]
        let suffix = name[dot...]
        if let match = topLevel.first(where: { $0.gguf == stem }) { return match.huggingFace + suffix }
        let parts = stem.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]), layer >= 0, String(layer) == parts[1],
            let match = block.first(where: { $0.gguf == parts[2] })
        else { return nil }
        return blockPrefix.replacingOccurrences(of: "N", with: String(layer)) + match.huggingFace + suffix
    }

    /// The GGUF name of a Hugging Face tensor, or nil when it has none.
    package func gguf(fromHuggingFace name: String) -> String? {
        guard let dot = name.lastIndex(of: "."), ["weight", "bias"].contains(name[name.index(after: dot)...]) else {
            return nil
        }
        let stem = name[..<dot]
        let suffix = name[dot...]
        if let match = topLevel.first(where: { $0.huggingFace == stem }) { return match.gguf + suffix }
        let prefix = blockPrefix.replacingOccurrences(of: "N.", with: "")
        guard stem.hasPrefix(prefix) else { return nil }
        let rest = stem.dropFirst(prefix.count)
        guard let layerEnd = rest.firstIndex(of: "."), let layer = Int(rest[..<layerEnd]), layer >= 0,
            String(layer) == rest[..<layerEnd],
            let match = block.first(where: { $0.huggingFace == rest[rest.index(after: layerEnd)...] })
        else { return nil }
        return "blk.\(layer).\(match.gguf)\(suffix)"
    }

    /// The GGUF stem of a block tensor name (`attn_q` for `blk.3.attn_q.weight`).
    func blockStem(_ name: String) -> String? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "blk", ["weight", "bias"].contains(parts[3]) else { return nil }
        return String(parts[2])
    }
}

extension GGUFFile {
    /// The architecture family and architecture of the file's `general.architecture`.
    func definition() throws -> (any ArchitectureDefinition.Type, Architecture) {
        guard let name = architecture else {
            throw EngineError(path: path, subject: "general.architecture", "is missing (expected the architecture name)")
        }
        guard let found = ArchitectureRegistry.definition(ggufArchitecture: name) else {
            throw EngineError(
                path: path, subject: "general.architecture",
                "architecture '\(name)' is not supported (expected \(ArchitectureRegistry.ggufNames.joined(separator: ", ")))")
        }
        return found
    }

    /// The tensors as a Hugging Face checkpoint holds them: names mapped by the architecture's
    /// GGUF naming, shapes outermost first, and the q/k projections convert_hf_to_gguf.py
    /// permuted for rotary embedding (`LlamaModel.permute`) marked for undoing it. Tensors of an
    /// architecture without a naming, and names with no counterpart, keep their GGUF names.
    package func storedTensors() throws -> [StoredTensor] {
        let naming = architecture.flatMap { name in ArchitectureRegistry.definition(ggufArchitecture: name)?.0.ggufNaming(name) }
        var headCounts: [String: Int] = [:]
        for (stem, keys) in naming?.permutedStems ?? [:] {
            if let key = keys.first(where: { self[$0] != nil }) ?? keys.last { headCounts[stem] = try positiveInteger(key) }
        }
        var seen: Set<String> = []
        return try tensors.map { info in
            guard let dtype = info.type.dtype else {
                throw EngineError(
                    path: path, subject: info.name,
                    "tensor type \(info.type.name) (ggml type id \(info.type.rawValue)) is not supported "
                        + "(expected F32, F16, BF16, F64, I8 to I64, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 or Q2_K to Q6_K)")
            }
            let name = naming?.huggingFace(fromGGUF: info.name) ?? info.name
            guard seen.insert(name).inserted else {
                throw EngineError(path: path, subject: info.name, "maps to the name '\(name)', which another tensor already has")
            }
            let heads = naming?.blockStem(info.name).flatMap { headCounts[$0] }
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

    /// The model configuration, read by the architecture's family from the `<architecture>.*`
    /// and `tokenizer.ggml.*` metadata.
    package func modelConfig() throws -> ModelConfig {
        let (definition, architecture) = try definition()
        return try definition.configuration(gguf: self, architecture)
    }

    /// The value of an optional key read by `read`, nil when the key is absent.
    package func optional<T>(_ key: String, _ read: (String) throws -> T) throws -> T? {
        self[key] == nil ? nil : try read(key)
    }

    /// An integer from 0 up.
    package func nonNegativeInteger(_ key: String) throws -> Int {
        guard let value = self[key] else { throw EngineError(path: path, subject: key, "metadata key is missing (expected an integer)") }
        guard let integer = value.int, integer >= 0 else {
            throw EngineError(path: path, subject: key, "is \(value) (expected a non-negative integer)")
        }
        return integer
    }

    /// An integer from 1 up to `ModelConfig.maxSize`.
    package func positiveInteger(_ key: String) throws -> Int {
        let value = try nonNegativeInteger(key)
        guard value > 0 else { throw EngineError(path: path, subject: key, "is 0 (expected a positive integer)") }
        guard value <= ModelConfig.maxSize else {
            throw EngineError(path: path, subject: key, "is \(value), larger than any model's (at most \(ModelConfig.maxSize))")
        }
        return value
    }

    /// A finite number above 0 (an epsilon, a rotary base).
    package func positiveNumber(_ key: String) throws -> Double {
        guard let value = self[key] else { throw EngineError(path: path, subject: key, "metadata key is missing (expected a number)") }
        guard let number = value.double, number.isFinite, number > 0 else {
            throw EngineError(path: path, subject: key, "is \(value) (expected a positive finite number)")
        }
        return number
    }
}
