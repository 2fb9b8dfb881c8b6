import Foundation

/// What `export` writes each weight matrix as.
package enum GGUFExportType: String, CaseIterable, Sendable {
    case f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q6_k, auto

    /// The block type, for the types qs quantizes to.
    var dtype: DType? {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        case .q8_0: .q8_0
        case .q4_0: .q4_0
        case .q4_1: .q4_1
        case .q5_0: .q5_0
        case .q5_1: .q5_1
        case .q4_k: .q4_K
        case .q6_k: .q6_K
        case .auto: nil
        }
    }
}

/// How one tensor goes into the GGUF.
package struct GGUFExportEntry: Sendable {
    package enum How: Sendable, Equatable {
        /// Written as it is held (stored blocks copied, or a plain float cast).
        case kept
        /// qs's packed codes rearranged into the GGUF blocks, no rounding.
        case exact
        /// Quantized from float values.
        case quantized
        /// Quantized from a form that was already quantized (dequantized first).
        case requantized(from: String)
    }
    package var name: String
    package var ggufName: String
    package var type: DType
    package var how: How
}

/// A model as a GGUF file llama.cpp runs: the llama family's architecture metadata, the
/// tokenizer, every tensor in the requested block type, q/k rows permuted as
/// convert_hf_to_gguf.py does.
package enum GGUFExporter {
    /// What each tensor would be written as. Throws when a layer already quantized would have to
    /// be rounded again and `requantize` is not set (naming the layers and what would happen).
    package static func plan(_ model: BlockModel, type: GGUFExportType, requantize: Bool) throws -> [GGUFExportEntry] {
        let config = model.config
        guard LlamaFamily.architectures.contains(config.architecture) else {
            throw EngineError("export writes GGUF for the llama family (llama, mistral, qwen2) that llama.cpp runs; this model is \(config.architecture.rawValue) (save it as a Hugging Face folder instead)")
        }
        let naming = LlamaFamily.ggufNaming(ggufArchitecture(config))!
        let weights = model.weights
        var entries: [GGUFExportEntry] = []
        var needRounding: [String] = []
        let outputName = config.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight"
        for name in weights.names {
            if config.tieWordEmbeddings && name == "lm_head.weight" { continue }
            guard let ggufName = naming.gguf(fromHuggingFace: name) else {
                throw EngineError(subject: name, "has no GGUF name in llama.cpp's \(ggufArchitecture(config)) layout")
            }
            let weight = try weights.weight(name)
            let label = model.names.canonical(forTensor: name) ?? name
            // Vectors (norms, biases) are F32, as llama.cpp keeps them.
            guard weight.shape.count == 2 else {
                entries.append(GGUFExportEntry(name: name, ggufName: ggufName, type: .f32, how: weight.isStored && (weight.storedDType == .f32) ? .kept : .quantized))
                continue
            }
            let columns = weight.shape[1]
            var target: DType
            var how: GGUFExportEntry.How
            switch weight.form {
            case .packed(let packed):
                let exact = GGMLQuantize.exactType(for: packed)
                if let exact, type == .auto || type.dtype == exact {
                    target = exact
                    how = .exact
                } else {
                    target = type.dtype ?? fallback(for: packed)
                    how = .requantized(from: weight.formName)
                    if type != .auto && !requantize { needRounding.append("\(label) (\(weight.formName) → \(target.rawValue))") }
                }
            case .dense:
                let cast = weight.denseType
                if type == .auto {
                    target = cast == .f32 ? .f16 : cast
                    how = cast == .f32 ? .quantized : .kept
                } else {
                    target = type.dtype!
                    how = target == cast ? .kept : (cast == .f32 || target == .f32 ? .quantized : .requantized(from: cast.rawValue))
                    if case .requantized = how, !requantize { needRounding.append("\(label) (\(cast.rawValue) → \(target.rawValue))") }
                }
            case .stored(let stored):
                let storedType = stored.dtype
                if type == .auto {
                    target = storedType.isQuantized || storedType == .bf16 || storedType == .f16 ? storedType : .f16
                } else {
                    target = type.dtype!
                }
                if target == storedType && weight.mask == nil && weight.scaling == nil {
                    how = .kept
                } else if storedType.isQuantized {
                    how = .requantized(from: storedType.rawValue)
                    if !requantize { needRounding.append("\(label) (stored \(storedType.rawValue) → \(target.rawValue))") }
                } else {
                    how = .quantized
                }
            }
            // The vocabulary projection stays at 6 or 8 bits under a 4- or 5-bit type, as
            // llama.cpp keeps its output (Q6_K, or Q8_0 where rows are not whole 256-blocks).
            if name == outputName, [.q4_0, .q4_1, .q5_0, .q5_1, .q4_k].contains(type), how != .exact {
                target = columns % 256 == 0 ? .q6_K : .q8_0
            }
            // Rows that are not whole super-blocks take llama.cpp's fallback (Q4_K → Q5_0,
            // Q6_K → Q8_0); rows that are not whole 32-blocks stay F16.
            if target.blockSize == 256 && columns % 256 != 0 { target = target == .q6_K ? .q8_0 : .q5_0 }
            if target.isQuantized && columns % target.blockSize != 0 { target = .f16 }
            entries.append(GGUFExportEntry(name: name, ggufName: ggufName, type: target, how: how))
        }
        if let first = needRounding.first {
            let more = needRounding.count > 1 ? " and \(needRounding.count - 1) more" : ""
            throw EngineError(
                "type=\(type.rawValue) cannot hold these layers without rounding them again: \(first)\(more); add `requantize` to dequantize and quantize them again, or use type=auto, which keeps each layer's own quantization where a GGUF type holds it")
        }
        return entries
    }

    /// The nearest block type for a packed weight no GGUF type holds exactly.
    static func fallback(for packed: PackedWeight) -> DType {
        var symmetric = false
        if case .constant = packed.zero { symmetric = true }
        if packed.bits >= 6 || packed.codeFormat == .e4m3 { return .q8_0 }
        if packed.bits == 5 { return symmetric ? .q5_0 : .q5_1 }
        return symmetric ? .q4_0 : .q4_1
    }

    /// llama.cpp's architecture name: mistral runs as llama.
    static func ggufArchitecture(_ config: ModelConfig) -> String {
        config.architecture == .qwen2 ? "qwen2" : "llama"
    }

    /// Writes the GGUF.
    package static func write(
        _ model: BlockModel, checkpoint: Checkpoint, tokenizer: Tokenizer?, name: String, plan: [GGUFExportEntry], to path: String,
        requested: GGUFExportType = .auto, progress: ((Int, Int) throws -> Void)? = nil
    ) throws {
        let structure = try ModelStructure(model)
        let config = structure.applied(to: model.config)
        let arch = ggufArchitecture(config)
        var metadata: [GGUFKeyValue] = []
        func add(_ key: String, _ value: GGUFValue) { metadata.append(GGUFKeyValue(key: key, value: value)) }
        add("general.architecture", .string(arch))
        add("general.name", .string(checkpoint.metadata["general.name"] ?? name))
        add("general.quantization_version", .uint32(2))
        add("general.file_type", .uint32(fileType(plan, requested: requested)))
        add("\(arch).context_length", .uint32(UInt32(config.maxPositionEmbeddings)))
        add("\(arch).embedding_length", .uint32(UInt32(config.hiddenSize)))
        add("\(arch).block_count", .uint32(UInt32(config.numHiddenLayers)))
        add("\(arch).feed_forward_length", .uint32(UInt32(config.intermediateSize)))
        add("\(arch).attention.head_count", .uint32(UInt32(config.numAttentionHeads)))
        add("\(arch).attention.head_count_kv", .uint32(UInt32(config.numKeyValueHeads)))
        add("\(arch).attention.layer_norm_rms_epsilon", .float32(Float(config.normEps)))
        add("\(arch).rope.freq_base", .float32(Float(config.ropeTheta)))
        add("\(arch).rope.dimension_count", .uint32(UInt32(config.headDim)))
        if config.headDim * config.numAttentionHeads != config.hiddenSize {
            add("\(arch).attention.key_length", .uint32(UInt32(config.headDim)))
            add("\(arch).attention.value_length", .uint32(UInt32(config.headDim)))
        }
        add("\(arch).vocab_size", .uint32(UInt32(config.vocabSize)))
        if let gguf = checkpoint.gguf {
            for entry in gguf.metadata where entry.key.hasPrefix("tokenizer.") { metadata.append(entry) }
        } else if let tokenizer {
            metadata += try tokenizer.ggufMetadata(vocabSize: config.vocabSize)
        } else {
            throw EngineError(path: checkpoint.path, "has no tokenizer, which llama.cpp needs in the GGUF")
        }

        let permuted = arch == "llama"
        var tensors: [GGUFTensorToWrite] = []
        for entry in plan {
            let weight = try model.weights.weight(entry.name)
            let heads: Int? = permuted && entry.ggufName.hasSuffix("attn_q.weight") ? config.numAttentionHeads
                : permuted && entry.ggufName.hasSuffix("attn_k.weight") ? config.numKeyValueHeads : nil
            guard let type = GGMLType(entry.type) else { throw EngineError(subject: entry.name, "\(entry.type.rawValue) has no GGUF type") }
            tensors.append(try GGUFTensorToWrite(name: entry.ggufName, shape: weight.shape, type: type) { buffer in
                try fill(buffer, weight: weight, entry: entry, heads: heads)
            })
        }
        try GGUFWriter.write(metadata: metadata, tensors: tensors, to: path, protecting: [checkpoint.path], progress: progress)
    }

    /// llama.cpp's `general.file_type`: the type asked for (Q4_K as llama.cpp's Q4_K_S), or for
    /// `auto` the type most matrices are in.
    static func fileType(_ plan: [GGUFExportEntry], requested: GGUFExportType) -> UInt32 {
        var main = requested.dtype ?? .f32
        if requested == .auto {
            var counts: [DType: Int] = [:]
            for entry in plan where entry.type != .f32 { counts[entry.type, default: 0] += 1 }
            main = counts.max { ($0.value, $0.key.rawValue) < ($1.value, $1.key.rawValue) }?.key ?? .f32
        }
        let table: [DType: UInt32] = [.f32: 0, .f16: 1, .q4_0: 2, .q4_1: 3, .q8_0: 7, .q5_0: 8, .q5_1: 9, .q4_K: 14, .q6_K: 18, .bf16: 32]
        return table[main] ?? 0
    }

    /// The tensor's bytes in the GGUF: rows in GGUF order (q/k permuted), each row's blocks.
    static func fill(_ buffer: UnsafeMutableRawBufferPointer, weight: Weight, entry: GGUFExportEntry, heads: Int?) throws {
        let rows = weight.shape.count == 2 ? weight.shape[0] : 1
        let columns = weight.count / max(rows, 1)
        let rowBytes = columns / entry.type.blockSize * entry.type.bytesPerBlock
        // GGUF row g holds Hugging Face row `source(g)`.
        func source(_ g: Int) -> Int {
            guard let heads, rows % (2 * heads) == 0 else { return g }
            let headRows = rows / heads
            let half = headRows / 2
            let head = g / headRows, within = g % headRows
            return head * headRows + (within % 2) * half + within / 2
        }
        if entry.how == .kept, case .stored(let stored) = weight.form, stored.dtype == entry.type, heads == nil || stored.rotaryPermutationHeads != nil {
            // A stored GGUF tensor is already in GGUF row order (permuted q/k included).
            try stored.withBytes { raw in
                guard raw.count == buffer.count else { throw EngineError(subject: entry.name, "stored bytes (\(raw.count)) do not match (\(buffer.count))") }
                buffer.copyMemory(from: raw)
            }
            return
        }
        if entry.how == .exact, case .packed(let packed) = weight.form {
            let blocks = GGMLQuantize.blocks(of: packed, as: entry.type)
            blocks.withUnsafeBytes { raw in
                for g in 0 ..< rows {
                    (buffer.baseAddress! + g * rowBytes).copyMemory(from: raw.baseAddress! + source(g) * rowBytes, byteCount: rowBytes)
                }
            }
            return
        }
        let type = entry.type
        func quantizeRows(_ v: UnsafeBufferPointer<Float>) {
            let pointers = RowPointers(values: v.baseAddress!, out: buffer.baseAddress!)
            // Rows are independent: quantized on every worker thread.
            parallelFor(rows, chunks: min(ThreadCount.configured, max(1, rows * columns / 65536))) { range in
                for g in range {
                    let row = pointers.values + source(g) * columns
                    let out = pointers.out + g * rowBytes
                    switch type {
                    case .f32: out.copyMemory(from: row, byteCount: columns * 4)
                    case .f16:
                        let o = out.assumingMemoryBound(to: UInt16.self)
                        for c in 0 ..< columns { o[c] = HalfConversion.floatToF16(row[c]).littleEndian }
                    case .bf16:
                        let o = out.assumingMemoryBound(to: UInt16.self)
                        for c in 0 ..< columns { o[c] = HalfConversion.floatToBF16(row[c]).littleEndian }
                    default:
                        GGMLQuantize.quantize(row, count: columns, as: type, into: out)
                    }
                }
            }
        }
        // fp32 values held in place (an f32 checkpoint) are read where they lie.
        if weight.withContiguousFloats(quantizeRows) != nil { return }
        try weight.floats().withUnsafeBufferPointer(quantizeRows)
    }

    private struct RowPointers: @unchecked Sendable {
        let values: UnsafePointer<Float>
        let out: UnsafeMutableRawPointer
    }
}

extension Weight {
    /// The stored tensor's dtype, for a stored form.
    package var storedDType: DType? {
        if case .stored(let tensor) = form { return tensor.dtype }
        return nil
    }
}
