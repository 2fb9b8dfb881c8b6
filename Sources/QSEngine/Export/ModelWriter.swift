import Foundation

/// The checkpoint layouts `save` writes.
package enum SaveFormat: String, CaseIterable, Sendable {
    /// A dense Hugging Face folder: every weight dequantized into `dtype`.
    case huggingFace = "hf"
    /// AutoGPTQ's v1 layout with `quantization_config`, as transformers' GPTQ integration reads it.
    case gptq
    /// compressed-tensors (`pack-quantized`, `int-quantized`, `float-quantized`), as llm-compressor writes.
    case compressedTensors = "compressed-tensors"
}

/// How to save.
package struct SaveOptions {
    package var format: SaveFormat = .huggingFace
    /// The dtype of weights written dense (all of them in `hf`; the unquantized ones otherwise).
    package var dtype: DType = .f32
    package var overwrite = false
    /// Layers the format cannot hold as they are quantized are quantized again (RTN, the format's
    /// nearest scheme) instead of refusing.
    package var requantize = false
    package var maxShardBytes = SafetensorsWriter.defaultMaxShardBytes
    /// The text of `qs.json` (what made the model).
    package var provenance: StrictJSON?
    /// The session's HTML report, written beside qs.json as report.html.
    package var report: String?

    package init() {}
}

/// What a save wrote.
package struct SaveSummary: Sendable {
    package var folder: String
    package var files: [String]
    /// Bytes of the tensors written.
    package var tensorBytes: Int
    /// Layers quantized again because the format could not hold their quantization, with how.
    package var requantized: [String]
    package var notes: [String]
}

/// Writes the weights a model computes with now as a checkpoint folder.
package enum ModelWriter {
    /// Saves `model` (its weights in their current forms) to `folder`. The folder is built under a
    /// temporary name and swapped in whole; the loaded model's own files are never written to.
    /// `progress` (tensors written, tensor count) may throw to stop: nothing is left behind.
    package static func save(
        _ model: BlockModel, checkpoint: Checkpoint, tokenizer: Tokenizer?, to folder: String, options: SaveOptions,
        progress: ((Int, Int) throws -> Void)? = nil
    ) throws -> SaveSummary {
        guard Converter.outputDTypes.contains(options.dtype) else {
            throw EngineError("cannot save weights as \(options.dtype.rawValue): expected f32, f16 or bf16")
        }
        try AtomicWrite.refuseOverwriting(folder, protecting: [checkpoint.path])
        let structure = try ModelStructure(model)
        var notes: [String] = []
        var requantized: [String] = []
        var tensors: [TensorToWrite] = []
        var quantization: StrictJSON?
        var sparsity: StrictJSON?

        let weights = model.weights
        let names = model.names
        let linearWeights = Set(names.entries.filter(\.kind.isMatrix).map(\.weight))
        var packedByModule: [(entry: LayerNames.Entry, packed: PackedWeight)] = []
        for entry in names.entries where linearWeights.contains(entry.weight) && weights.contains(entry.weight) {
            if case .packed(let packed) = try weights.weight(entry.weight).form { packedByModule.append((entry, packed)) }
        }
        // Layers the format cannot hold are refused or, with `requantize`, quantized again.
        var replacements: [String: PackedWeight] = [:]
        if options.format != .huggingFace {
            var problems: [(String, String)] = []
            for (entry, packed) in packedByModule {
                let problem = options.format == .gptq ? QuantizedLayouts.gptqProblem(packed) : QuantizedLayouts.compressedProblem(packed)
                guard let problem else { continue }
                if options.requantize, let redone = try requantize(entry, packed, weights: weights, format: options.format) {
                    replacements[entry.weight] = redone
                    requantized.append("\(entry.canonical): \(problem); quantized again as \((try? Weight(packed: redone).formName) ?? "") by RTN")
                } else {
                    problems.append((entry.canonical, problem))
                }
            }
            if let first = problems.first {
                let more = problems.count > 1 ? " (and \(problems.count - 1) more layers)" : ""
                throw EngineError(
                    subject: first.0,
                    "\(first.1)\(more); add `requantize` to quantize such layers again by RTN, or save with another format (format=hf writes every weight dense)")
            }
        }
        let packedNow = packedByModule.map { ($0.entry, replacements[$0.entry.weight] ?? $0.packed) }

        switch options.format {
        case .huggingFace:
            if !packedByModule.isEmpty { notes.append("\(packedByModule.count) quantized layers written dense (\(options.dtype.rawValue), their dequantized values)") }
        case .gptq:
            guard !packedNow.isEmpty else { throw EngineError("no layer is quantized: format=gptq needs quantized layers (save without format= writes a dense folder)") }
            let schemes = Set(packedNow.map { GPTQScheme($0.1) })
            guard schemes.count == 1, let scheme = schemes.first else {
                throw EngineError("GPTQ's quantization_config has one scheme, but the layers are quantized \(schemes.count) ways (\(schemes.map(\.description).sorted().joined(separator: "; "))); save with format=compressed-tensors for mixed precision")
            }
            let blockLinears = names.entries.filter { linearWeights.contains($0.weight) && $0.kind != .head && weights.contains($0.weight) }
            let unquantized = blockLinears.filter { entry in !packedNow.contains { $0.0.weight == entry.weight } }
            if let first = unquantized.first {
                throw EngineError(subject: first.canonical, "is not quantized (\(unquantized.count) block layers are not); GPTQ quantizes every linear layer of the blocks: quantize them too, or save with format=compressed-tensors")
            }
            quantization = scheme.config
        case .compressedTensors:
            var groups: [QuantizedLayouts.CompressedScheme: [String]] = [:]
            for (entry, packed) in packedNow { groups[QuantizedLayouts.CompressedScheme(packed), default: []].append(entry.module) }
            guard !groups.isEmpty || names.entries.contains(where: { (try? weights.weight($0.weight).mask) != nil }) else {
                throw EngineError("no layer is quantized or pruned: format=compressed-tensors needs one (save without format= writes a dense folder)")
            }
            let quantizedModules = Set(packedNow.map { $0.0.module })
            let ignored = names.entries.filter { $0.kind.isMatrix && !quantizedModules.contains($0.module) }.map(\.module)
            let headIgnored = ignored.contains("lm_head") || !names.entries.contains { $0.module == "lm_head" }
            let ordered = groups.sorted { ($0.key.bits, $0.value.first ?? "") > ($1.key.bits, $1.value.first ?? "") }
            let formats = Set(ordered.map { $0.key.format })
            var configGroups: [StrictJSON.Member] = []
            for (index, group) in ordered.enumerated() {
                var members: [StrictJSON.Member] = [
                    StrictJSON.Member("targets", .array(group.value.map { .string($0) })),
                    StrictJSON.Member("weights", group.key.json),
                    StrictJSON.Member("input_activations", .null), StrictJSON.Member("output_activations", .null),
                ]
                members.append(StrictJSON.Member("format", .string(group.key.format)))
                configGroups.append(StrictJSON.Member("group_\(index)", .object(members)))
            }
            if !groups.isEmpty {
                quantization = .object([
                    StrictJSON.Member("quant_method", .string("compressed-tensors")),
                    StrictJSON.Member("format", .string(formats.count == 1 ? formats.first! : "mixed-precision")),
                    StrictJSON.Member("quantization_status", .string("compressed")),
                    StrictJSON.Member("config_groups", .object(configGroups)),
                    StrictJSON.Member("ignore", .array((ignored + (headIgnored && !ignored.contains("lm_head") ? ["lm_head"] : [])).map { .string($0) })),
                    StrictJSON.Member("kv_cache_scheme", .null),
                    StrictJSON.Member("version", .string("0.19.0")),
                ])
            }
            sparsity = try sparsityConfig(model)
        }

        // The tensors, in checkpoint order.
        let packedModules = Dictionary(packedNow.map { ($0.0.weight, ($0.0, $0.1)) }, uniquingKeysWith: { first, _ in first })
        for name in weights.names {
            if options.format != .huggingFace, let (entry, packed) = packedModules[name] {
                switch options.format {
                case .gptq: tensors += try QuantizedLayouts.gptqTensors(packed, module: entry.module)
                default:
                    tensors += try QuantizedLayouts.compressedTensors(packed, module: entry.module, format: QuantizedLayouts.CompressedScheme(packed).format)
                }
                continue
            }
            tensors.append(try denseTensor(name, weights: weights, dtype: options.dtype))
        }

        let configData = try configJSON(
            checkpoint: checkpoint, config: model.config, structure: structure, dtype: options.dtype, quantization: quantization, sparsity: sparsity)
        var written: [String] = []
        let tensorBytes = tensors.reduce(0) { $0 + $1.byteCount }
        var done = 0
        let total = tensors.count
        let counted = tensors.map { tensor -> TensorToWrite in
            var tensor = tensor
            let write = tensor.write
            tensor.write = { buffer in
                try write(buffer)
                done += 1
                try progress?(done, total)
            }
            return tensor
        }
        try AtomicWrite.createFolder(at: folder, overwrite: options.overwrite, protecting: [checkpoint.path]) { temporary in
            func path(_ name: String) -> String { (temporary as NSString).appendingPathComponent(name) }
            try configData.write(to: URL(fileURLWithPath: path("config.json")))
            let files = try SafetensorsWriter.write(counted, metadata: ["format": "pt"], toFolder: temporary, maxShardBytes: options.maxShardBytes)
            written = ["config.json"] + files.map { ($0 as NSString).lastPathComponent }
            written += try Converter.writeTokenizerFiles(checkpoint: checkpoint, tokenizer: tokenizer, config: model.config, into: temporary)
            if let provenance = options.provenance {
                try Data((provenance.serialized(indent: 2) + "\n").utf8).write(to: URL(fileURLWithPath: path("qs.json")))
                written.append("qs.json")
            }
            if let report = options.report {
                try Data(report.utf8).write(to: URL(fileURLWithPath: path("report.html")))
                written.append("report.html")
            }
        }
        return SaveSummary(folder: folder, files: written, tensorBytes: tensorBytes, requantized: requantized, notes: notes)
    }

    /// A tensor written dense in `dtype` (integer tensors as they are), in its checkpoint layout.
    static func denseTensor(_ name: String, weights: WeightStore, dtype: DType) throws -> TensorToWrite {
        let weight = try weights.weight(name)
        let original = try weights.original(name)
        if case .stored(let stored) = weight.form, !stored.dtype.isFloatingPoint && !stored.dtype.isQuantized {
            return try TensorToWrite(copying: stored, name: name)
        }
        // A packed form is out×in; a checkpoint that stores the matrix in×out (GPT-2's Conv1D) gets it back so.
        let transpose = original.layout == .inOut && weight.layout == .outIn && weight.shape.count == 2
        let shape = transpose ? [weight.shape[1], weight.shape[0]] : weight.shape
        if case .stored(let stored) = weight.form, stored.dtype == dtype, stored.rotaryPermutationHeads == nil, weight.mask == nil, weight.scaling == nil {
            return try TensorToWrite(copying: stored, name: name)
        }
        return try TensorToWrite(name: name, dtype: dtype, shape: shape) { buffer in
            var values = try weight.floats()
            if transpose { values = transposed(values, rows: weight.shape[0], columns: weight.shape[1]) }
            try Converter.encode(values, as: dtype, into: buffer)
        }
    }

    static func transposed(_ values: [Float], rows: Int, columns: Int) -> [Float] {
        var out = [Float](repeating: 0, count: values.count)
        for r in 0 ..< rows { for c in 0 ..< columns { out[c * rows + r] = values[r * columns + c] } }
        return out
    }

    /// Quantizes a layer again by RTN into the nearest scheme the format holds: the same bits and
    /// group on the min-max grid, with integer zero points (f16 scales).
    static func requantize(_ entry: LayerNames.Entry, _ packed: PackedWeight, weights: WeightStore, format: SaveFormat) throws -> PackedWeight? {
        var bits = packed.bits
        if format == .gptq && ![2, 3, 4, 8].contains(bits) { bits = bits < 2 ? 2 : bits <= 4 ? 4 : 8 }
        if packed.codeFormat == .e4m3 { bits = 8 }
        var symmetric = false
        if case .constant = packed.zero, packed.codeFormat == .integer { symmetric = true }
        let granularity: PackedWeight.Granularity = packed.granularity == .tensor ? .channel : packed.granularity
        let scheme = QuantizationScheme(bits: bits, symmetric: symmetric, granularity: granularity, clip: .none)
        let values = try weights.weight(entry.weight).floats()
        let redone = try RoundToNearest.quantize(values, rows: packed.rows, columns: packed.columns, scheme: scheme, mask: try weights.weight(entry.weight).mask)
        let problem = format == .gptq ? QuantizedLayouts.gptqProblem(redone) : QuantizedLayouts.compressedProblem(redone)
        return problem == nil ? redone : nil
    }

    /// compressed-tensors' `sparsity_config` for the pruned layers (weights stored dense).
    static func sparsityConfig(_ model: BlockModel) throws -> StrictJSON? {
        var targets: [String] = []
        var zeros = 0
        var total = 0
        var structures: Set<String> = []
        for entry in model.names.entries where model.weights.contains(entry.weight) {
            let weight = try model.weights.weight(entry.weight)
            total += weight.count
            guard let mask = weight.mask else { continue }
            targets.append(entry.module)
            zeros += Int((mask.sparsity * Double(mask.count)).rounded())
            structures.insert(mask.requested.flatMap { $0.contains(":") ? $0 : nil } ?? "unstructured")
        }
        guard !targets.isEmpty else { return nil }
        return .object([
            StrictJSON.Member("format", .string("dense")),
            StrictJSON.Member("global_sparsity", .number(Double(zeros) / Double(max(total, 1)))),
            StrictJSON.Member("sparsity_structure", .string(structures.count == 1 ? structures.first! : "unstructured")),
            StrictJSON.Member("targets", .array(targets.map { .string($0) })),
            StrictJSON.Member("ignore", .array([])),
        ])
    }

    /// config.json for the saved folder: the source's keys (or the configuration's) with the
    /// structure as held now, `torch_dtype`, and the quantization and sparsity configs.
    static func configJSON(
        checkpoint: Checkpoint, config: ModelConfig, structure: ModelStructure, dtype: DType, quantization: StrictJSON?,
        sparsity: StrictJSON?
    ) throws -> Data {
        var base = try Converter.configJSON(for: checkpoint, config: config, dtype: dtype)
        var parsed = try StrictJSON.parse([UInt8](base))
        guard var members = parsed.members else { return base }
        func set(_ key: String, _ value: StrictJSON) {
            if let index = members.firstIndex(where: { $0.key == key }) { members[index].value = value } else { members.append(StrictJSON.Member(key, value)) }
        }
        for (key, value) in try structure.configKeys(config) { set(key, value) }
        if let quantization {
            var q = quantization
            if let sparsity, case .object(var qm) = q {
                qm.append(StrictJSON.Member("sparsity_config", sparsity))
                q = .object(qm)
            }
            set("quantization_config", q)
        } else if let sparsity {
            set("quantization_config", .object([
                StrictJSON.Member("quant_method", .string("compressed-tensors")),
                StrictJSON.Member("format", .string("dense")),
                StrictJSON.Member("quantization_status", .string("compressed")),
                StrictJSON.Member("config_groups", .object([])),
                StrictJSON.Member("sparsity_config", sparsity),
                StrictJSON.Member("version", .string("0.19.0")),
            ]))
        }
        parsed = .object(members)
        base = Data((parsed.serialized(indent: 2) + "\n").utf8)
        return base
    }
}

/// GPTQ's one scheme for a whole model.
struct GPTQScheme: Hashable, CustomStringConvertible {
    var bits: Int
    var groupSize: Int
    var symmetric: Bool
    var actOrder: Bool

    init(_ packed: PackedWeight) {
        bits = packed.bits
        switch packed.granularity {
        case .group(let size): groupSize = size
        case .channel, .tensor: groupSize = -1
        }
        if case .constant = packed.zero { symmetric = true } else { symmetric = false }
        actOrder = packed.groupIndex != nil
    }

    var description: String { "int\(bits) \(groupSize < 0 ? "channel" : "g\(groupSize)")\(symmetric ? "" : " asym")\(actOrder ? " act-order" : "")" }

    var config: StrictJSON {
        .object([
            StrictJSON.Member("quant_method", .string("gptq")), StrictJSON.Member("bits", .integer(bits)),
            StrictJSON.Member("group_size", .integer(groupSize)), StrictJSON.Member("desc_act", .bool(actOrder)),
            StrictJSON.Member("sym", .bool(symmetric)), StrictJSON.Member("true_sequential", .bool(true)),
            StrictJSON.Member("damp_percent", .number(0.01)), StrictJSON.Member("checkpoint_format", .string("gptq")),
        ])
    }
}

/// The attention heads and MLP widths of a model as held now (structured pruning changes
/// them), checked to be the same in every block, as a Hugging Face configuration or a GGUF's
/// scalar keys describe them.
package struct ModelStructure: Sendable {
    package var heads: Int
    package var keyValueHeads: Int
    package var intermediate: Int
    package var changed: Bool

    /// Each block's query heads, key/value heads and MLP width as held now (empty lists for an
    /// architecture without them).
    package static func perBlock(_ model: BlockModel) throws -> (heads: [Int], keyValueHeads: [Int], intermediate: [Int]) {
        let c = model.config
        let w = model.weights
        var heads: [Int] = [], kv: [Int] = [], ffn: [Int] = []
        for block in 0 ..< c.numHiddenLayers {
            if let q = model.names.entry("layer.\(block).attn.q"), let k = model.names.entry("layer.\(block).attn.k") {
                heads.append(try w.weight(q.weight).outFeatures / c.headDim)
                kv.append(try w.weight(k.weight).outFeatures / c.headDim)
            } else if let qkv = model.names.entry("layer.\(block).attn.qkv") {
                let count = try w.weight(qkv.weight).outFeatures / 3 / c.headDim
                heads.append(count)
                kv.append(count)
            }
            if let up = model.names.entry("layer.\(block).mlp.up") { ffn.append(try w.weight(up.weight).outFeatures) }
        }
        return (heads, kv, ffn)
    }

    package init(_ model: BlockModel) throws {
        let c = model.config
        let blocks = try Self.perBlock(model)
        let heads = Set(blocks.heads), kv = Set(blocks.keyValueHeads), ffn = Set(blocks.intermediate)
        guard heads.count <= 1, kv.count <= 1, ffn.count <= 1 else {
            throw EngineError(
                "structured pruning left blocks of different sizes (heads \(heads.sorted()), key/value heads \(kv.sorted()), MLP widths \(ffn.sorted())); a configuration holds one size per model: prune with `uniform`")
        }
        self.heads = heads.first ?? c.numAttentionHeads
        keyValueHeads = kv.first ?? c.numKeyValueHeads
        intermediate = ffn.first ?? c.intermediateSize
        changed = self.heads != c.numAttentionHeads || keyValueHeads != c.numKeyValueHeads || intermediate != c.intermediateSize
    }

    /// The configuration with this structure.
    package func applied(to config: ModelConfig) -> ModelConfig {
        var c = config
        c.numAttentionHeads = heads
        c.numKeyValueHeads = keyValueHeads
        c.intermediateSize = intermediate
        return c
    }

    /// The config.json keys that change.
    func configKeys(_ config: ModelConfig) throws -> [(String, StrictJSON)] {
        guard changed else { return [] }
        if LlamaFamily.architectures.contains(config.architecture) {
            return [
                ("num_attention_heads", .integer(heads)), ("num_key_value_heads", .integer(keyValueHeads)),
                ("head_dim", .integer(config.headDim)), ("intermediate_size", .integer(intermediate)),
            ]
        } else {
            guard heads == config.numAttentionHeads else {
                throw EngineError(
                    "\(config.architecture.rawValue)'s configuration derives the head size from the hidden size and the head count, so it cannot describe removed heads; save a head-pruned \(config.architecture.rawValue) model after `prune ... neurons=` only")
            }
            return [(config.architecture == .gpt2 ? "n_inner" : "intermediate_size", .integer(intermediate))]
        }
    }
}
