import Foundation

/// Rewrites a checkpoint as a Hugging Face folder (config.json, model.safetensors, tokenizer
/// files) with its floating-point weights in one dtype.
package enum Converter {
    /// The dtypes a converted folder can hold its weights in.
    package static let outputDTypes: [DType] = [.f32, .f16, .bf16]

    /// Writes `checkpoint` to the folder `output`, weights as `dtype`. The folder is built under
    /// a temporary name and swapped in at the end; the source is never written to. An existing
    /// `output` needs `overwrite`, and keeps its other files (`AtomicWrite.createFolder`).
    /// `progress` gets (tensors done, tensor count).
    package static func convert(
        _ checkpoint: Checkpoint, to output: String, dtype: DType, maxShardBytes: Int = 5 << 30, overwrite: Bool = false,
        progress: ((Int, Int) -> Void)? = nil
    ) throws {
        guard outputDTypes.contains(dtype) else {
            throw EngineError("cannot convert to \(dtype.rawValue): expected one of \(outputDTypes.map(\.rawValue).joined(separator: ", "))")
        }
        guard let config = checkpoint.config else {
            throw EngineError(path: checkpoint.path, "has no config.json beside it: a Hugging Face folder needs one")
        }
        // A configuration that does not fit the tensors would be written as a folder nothing loads.
        _ = try ModelLoader.names(for: checkpoint)
        try AtomicWrite.refuseOverwriting(output, protecting: [checkpoint.path])
        let configData = try configJSON(for: checkpoint, config: config, dtype: dtype)
        let tensors = checkpoint.tensors
        var done = 0
        let toWrite = try tensors.map { tensor in
            let outType = tensor.dtype.isFloatingPoint || tensor.dtype.isQuantized ? dtype : tensor.dtype
            return try TensorToWrite(name: tensor.name, dtype: outType, shape: tensor.shape) { buffer in
                if outType == tensor.dtype && tensor.rotaryPermutationHeads == nil {
                    tensor.withBytes { buffer.copyMemory(from: $0) }
                } else {
                    try encode(Dequantize.floats(tensor), as: outType, into: buffer)
                }
                done += 1
                progress?(done, tensors.count)
            }
        }
        try AtomicWrite.createFolder(at: output, overwrite: overwrite, protecting: [checkpoint.path]) { folder in
            try configData.write(to: URL(fileURLWithPath: (folder as NSString).appendingPathComponent("config.json")))
            _ = try SafetensorsWriter.write(toWrite, metadata: ["format": "pt"], toFolder: folder, maxShardBytes: maxShardBytes)
            _ = try writeTokenizerFiles(checkpoint: checkpoint, tokenizer: nil, config: config, into: folder)
        }
    }

    /// Copies the tokenizer files of a Hugging Face folder into `folder`, or, for a GGUF (which
    /// carries its tokenizer in metadata), writes tokenizer.json and tokenizer_config.json as
    /// transformers expects them. Returns the names written.
    package static func writeTokenizerFiles(checkpoint: Checkpoint, tokenizer: Tokenizer?, config: ModelConfig, into folder: String) throws -> [String] {
        var written: [String] = []
        for file in checkpoint.companionFiles {
            let name = (file as NSString).lastPathComponent
            try FileManager.default.copyItem(atPath: file, toPath: (folder as NSString).appendingPathComponent(name))
            written.append(name)
        }
        if let gguf = checkpoint.gguf, let tokenizer = try tokenizer ?? Tokenizer.fromGGUF(gguf) {
            try tokenizer.tokenizerJSON().write(to: URL(fileURLWithPath: (folder as NSString).appendingPathComponent("tokenizer.json")))
            try tokenizer.tokenizerConfigJSON(modelMaxLength: config.maxPositionEmbeddings)
                .write(to: URL(fileURLWithPath: (folder as NSString).appendingPathComponent("tokenizer_config.json")))
            written += ["tokenizer.json", "tokenizer_config.json"]
        }
        return written
    }

    /// config.json for the output: the source's own file with `torch_dtype` updated when there
    /// is one (it may carry keys qs does not model), else one written from the configuration.
    static func configJSON(for checkpoint: Checkpoint, config: ModelConfig, dtype: DType) throws -> Data {
        let torchDType = ["f32": "float32", "f16": "float16", "bf16": "bfloat16"][dtype.rawValue] ?? "float32"
        var source: Data?
        if checkpoint.format == .safetensors {
            let path = (checkpoint.folder as NSString).appendingPathComponent("config.json")
            if FileAccess.kind(path) != .missing { source = try FileAccess.contents(path, expected: "config.json", limit: 64 << 20) }
        }
        guard let source else {
            var written = config
            written.torchDType = torchDType
            return written.configJSON()
        }
        // Keep the source's keys in their order; only the dtype changes, and a quantization
        // config no longer applies to dense weights.
        let path = (checkpoint.folder as NSString).appendingPathComponent("config.json")
        let parsed: StrictJSON
        do {
            parsed = try StrictJSON.parse([UInt8](source))
        } catch {
            throw EngineError(path: path, "\(error)")
        }
        guard var members = parsed.members else { throw EngineError(path: path, "is not a JSON object") }
        members.removeAll { $0.key == "quantization_config" }
        // transformers 4 writes torch_dtype, transformers 5 dtype: update whichever is there.
        var updated = false
        for index in members.indices where members[index].key == "torch_dtype" || members[index].key == "dtype" {
            members[index].value = .string(torchDType)
            updated = true
        }
        if !updated { members.append(StrictJSON.Member("torch_dtype", .string(torchDType))) }
        return Data((StrictJSON.object(members).serialized(indent: 2) + "\n").utf8)
    }

    /// Encodes fp32 values as `dtype` (f32, f16 or bf16) into `buffer`.
    static func encode(_ values: [Float], as dtype: DType, into buffer: UnsafeMutableRawBufferPointer) throws {
        precondition(buffer.count == values.count * dtype.bytesPerBlock, "buffer size does not match")
        switch dtype {
        case .f32:
            values.withUnsafeBytes { buffer.copyMemory(from: $0) }
        case .f16:
            let out = buffer.bindMemory(to: UInt16.self)
            for i in values.indices { out[i] = HalfConversion.floatToF16(values[i]).littleEndian }
        case .bf16:
            let out = buffer.bindMemory(to: UInt16.self)
            for i in values.indices { out[i] = HalfConversion.floatToBF16(values[i]).littleEndian }
        default:
            throw EngineError("cannot encode \(dtype.rawValue)")
        }
    }
}
