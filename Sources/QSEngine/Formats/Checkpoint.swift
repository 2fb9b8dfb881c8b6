import Foundation

/// The container a checkpoint was read from.
package enum CheckpointFormat: String, Sendable {
    /// A Hugging Face folder (config.json + safetensors) or a lone .safetensors file.
    case safetensors
    /// A GGUF file (weights, configuration and tokenizer in one file).
    case gguf
}

/// A model checkpoint opened from disk: its configuration and its tensors, whose bytes stay in
/// the memory-mapped files until a kernel asks for them.
package final class Checkpoint: @unchecked Sendable {
    /// The path that was opened (a folder or a file).
    package let path: String
    package let format: CheckpointFormat
    /// The configuration; nil for a lone .safetensors file with no config.json beside it.
    package let config: ModelConfig?
    /// The tensors, in file order, named by their Hugging Face checkpoint names.
    package let tensors: [StoredTensor]
    /// String metadata (safetensors `__metadata__`, or GGUF `general.*` strings).
    package let metadata: [String: String]
    /// Tokenizer and other files of a Hugging Face folder that travel with the model.
    package let companionFiles: [String]
    /// The GGUF file, when the checkpoint is one (its metadata holds the tokenizer).
    package let gguf: GGUFFile?
    /// The quantized layers of a GPTQ or compressed-tensors folder, by weight name
    /// (`<module>.weight`), read into packed weights; their stored parts are not in `tensors`.
    package let packedWeights: [(name: String, packed: PackedWeight)]
    /// Modules a compressed-tensors `sparsity_config` names as pruned (with "2:4" or nil for
    /// unstructured): their zeros become their masks when the model is built.
    package var prunedModules: [String: String?] = [:]

    init(
        path: String, format: CheckpointFormat, config: ModelConfig?, tensors: [StoredTensor],
        metadata: [String: String], companionFiles: [String], gguf: GGUFFile?,
        packedWeights: [(name: String, packed: PackedWeight)] = []
    ) {
        self.packedWeights = packedWeights
        self.path = path
        self.format = format
        self.config = config
        self.tensors = tensors
        self.metadata = metadata
        self.companionFiles = companionFiles
        self.gguf = gguf
    }

    /// Files of a Hugging Face folder that are copied along when the weights are rewritten.
    static let companionNames = [
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json",
        "merges.txt", "tokenizer.model", "added_tokens.json", "generation_config.json",
    ]

    /// Opens a Hugging Face folder, a .safetensors file or a .gguf file.
    package static func open(_ path: String) throws -> Checkpoint {
        switch FileAccess.kind(path) {
        case .missing: throw EngineError(path: path, "no such file or folder")
        case .directory: return try openFolder(path)
        case .other(let kind):
            throw EngineError(path: path, "is \(kind), not a model: expected a Hugging Face folder, a .safetensors file or a .gguf file")
        case .regular: break
        }
        if try hasGGUFMagic(path) { return try openGGUF(path) }
        if path.hasSuffix(".safetensors") {
            let file = try SafetensorsFile(path: path)
            let folder = (path as NSString).deletingLastPathComponent
            let configPath = (folder as NSString).appendingPathComponent("config.json")
            let config = FileAccess.kind(configPath) != .missing ? try readConfig(configPath) : nil
            return Checkpoint(
                path: path, format: .safetensors, config: config, tensors: file.tensors,
                metadata: file.metadata, companionFiles: [], gguf: nil)
        }
        throw EngineError(
            path: path, "not a model: expected a Hugging Face folder (config.json + safetensors), a .safetensors file or a .gguf file")
    }

    private static func openFolder(_ path: String) throws -> Checkpoint {
        let configPath = (path as NSString).appendingPathComponent("config.json")
        guard FileAccess.kind(configPath) != .missing else {
            throw EngineError(path: path, "not a Hugging Face model folder: config.json is missing")
        }
        // Read once: the configuration, and a quantized checkpoint's quantization_config.
        let configData = try FileAccess.contents(configPath, expected: "config.json", limit: 64 << 20)
        let config = try ModelConfig(configJSON: configData, path: configPath)
        let configJSON = try? StrictJSON.parse([UInt8](configData))
        let (stored, metadata) = try SafetensorsCheckpoint.open(path)
        let (tensors, packed) = try QuantizedCheckpoint.unpack(stored, config: configJSON, configPath: configPath)
        let companions = companionNames.map { (path as NSString).appendingPathComponent($0) }
            .filter { FileAccess.kind($0) == .regular }
        let checkpoint = Checkpoint(
            path: path, format: .safetensors, config: config, tensors: tensors, metadata: metadata,
            companionFiles: companions, gguf: nil, packedWeights: packed)
        checkpoint.prunedModules = QuantizedCheckpoint.prunedModules(config: configJSON)
        return checkpoint
    }

    private static func openGGUF(_ path: String) throws -> Checkpoint {
        let file = try GGUFFile(path: path)
        let config = try file.modelConfig()
        let tensors = try file.storedTensors()
        return Checkpoint(
            path: path, format: .gguf, config: config, tensors: tensors, metadata: ggufStringMetadata(file),
            companionFiles: [], gguf: file)
    }

    /// The GGUF's `general.*` string values, for display.
    static func ggufStringMetadata(_ file: GGUFFile) -> [String: String] {
        var out: [String: String] = [:]
        for entry in file.metadata where entry.key.hasPrefix("general.") {
            if let text = entry.value.string { out[entry.key] = text }
        }
        return out
    }

    private static func readConfig(_ path: String) throws -> ModelConfig {
        try ModelConfig(configJSONAt: path)
    }

    private static func hasGGUFMagic(_ path: String) throws -> Bool {
        let fd = try FileAccess.openRegular(path, expected: "a model file")
        defer { close(fd) }
        var magic = [UInt8](repeating: 0, count: 4)
        let count = magic.withUnsafeMutableBytes { read(fd, $0.baseAddress, 4) }
        return count == 4 && magic == Array("GGUF".utf8)
    }

    /// The folder the checkpoint lives in (the path itself for a Hugging Face folder).
    package var folder: String {
        var isDirectory: ObjCBool = false
        let isFolder = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
        return isFolder ? path : (path as NSString).deletingLastPathComponent
    }

    /// A summary for `qs inspect` and `info`: counts and bytes, no tensor data touched.
    package var summary: CheckpointSummary {
        var byType: [DType: (tensors: Int, elements: Int, bytes: Int)] = [:]
        for tensor in tensors {
            let entry = byType[tensor.dtype] ?? (0, 0, 0)
            byType[tensor.dtype] = (entry.tensors + 1, entry.elements + tensor.count, entry.bytes + tensor.byteCount)
        }
        let rows = byType.map { CheckpointSummary.DTypeRow(dtype: $0.key, tensors: $0.value.tensors, elements: $0.value.elements, bytes: $0.value.bytes) }
            .sorted { $0.bytes > $1.bytes }
        return CheckpointSummary(
            path: path, format: format, formatVersion: gguf?.version, name: metadata["general.name"], config: config,
            tensorCount: tensors.count, parameterCount: tensors.reduce(0) { $0 + $1.count }, byDType: rows)
    }
}

/// What `qs inspect` shows of a checkpoint.
package struct CheckpointSummary: Sendable {
    /// Elements and bytes held in one dtype.
    package struct DTypeRow: Sendable, Equatable {
        package var dtype: DType
        package var tensors: Int
        package var elements: Int
        package var bytes: Int
    }

    package var path: String
    package var format: CheckpointFormat
    /// The GGUF version, for a GGUF.
    package var formatVersion: Int?
    /// The model's own name (GGUF `general.name`), when the file gives one.
    package var name: String?
    package var config: ModelConfig?
    package var tensorCount: Int
    package var parameterCount: Int
    package var byDType: [DTypeRow]

    /// Bytes of all tensors as stored.
    package var totalBytes: Int { byDType.reduce(0) { $0 + $1.bytes } }
}
