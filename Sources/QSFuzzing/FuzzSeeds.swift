import Foundation
import QSEngine

/// The generated seeds of the model-file targets: the tiny model as safetensors (f32, f16), as
/// GGUF (F32, F16 tensors with its `llama.*` metadata) and its config.json in a few variants.
/// scripts/fuzz adds the repository's tokenizer fixtures and .qs files for the other targets.
package enum FuzzSeeds {
    package static func write(to folder: String) throws {
        let harness = try FuzzHarness()
        let fileManager = FileManager.default
        for target in FuzzTarget.allCases {
            try fileManager.createDirectory(atPath: folder + "/" + target.rawValue, withIntermediateDirectories: true)
        }
        let checkpoint = try Checkpoint.open(harness.tinyModel)
        try fileManager.copyItem(atPath: harness.tinyModel + "/model.safetensors", toPath: folder + "/safetensors/tiny-f32.safetensors")
        let f16 = harness.scratch + "/f16"
        try Converter.convert(checkpoint, to: f16, dtype: .f16)
        try fileManager.copyItem(atPath: f16 + "/model.safetensors", toPath: folder + "/safetensors/tiny-f16.safetensors")
        for dtype in [DType.f32, .f16] {
            try Data(try gguf(checkpoint, dtype: dtype)).write(to: URL(fileURLWithPath: folder + "/gguf/tiny-\(dtype.rawValue).gguf"))
        }
        let variants: [(String, String)] = [
            ("tiny", FuzzHarness.tinyConfig),
            ("tied", FuzzHarness.tinyConfig.replacingOccurrences(of: "\"tie_word_embeddings\": false", with: "\"tie_word_embeddings\": true")),
            ("rope", FuzzHarness.tinyConfig.replacingOccurrences(of: "\"rms_norm_eps\": 1e-5", with: "\"rope_parameters\": {\"rope_theta\": 100000.0, \"rope_type\": \"default\"}, \"rms_norm_eps\": 1e-5")),
            ("gpt2", #"{"model_type": "gpt2", "vocab_size": 64, "n_embd": 16, "n_layer": 2, "n_head": 2, "n_positions": 64}"#),
            ("bert", #"{"model_type": "bert", "vocab_size": 64, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}"#),
        ]
        for (name, text) in variants {
            try Data(text.utf8).write(to: URL(fileURLWithPath: folder + "/config/\(name).json"))
        }
        try Data(byteLevelBPE().utf8).write(to: URL(fileURLWithPath: folder + "/tokenizer/byte-level-bpe.json"))
    }

    /// A byte-level BPE tokenizer.json of GPT-2's kind, small enough to parse thousands of
    /// times a second: the 256 byte symbols, a few merges, a special token.
    static func byteLevelBPE() -> String {
        var symbols: [String] = []
        var next: UInt32 = 256
        for byte in 0 ..< 256 {
            let printable = (0x21 ... 0x7E).contains(byte) || (0xA1 ... 0xAC).contains(byte) || (0xAE ... 0xFF).contains(byte)
            let scalar = Unicode.Scalar(printable ? UInt32(byte) : next)!
            if !printable { next += 1 }
            symbols.append(String(Character(scalar)))
        }
        let merges = [("h", "e"), ("l", "l"), ("he", "ll"), ("Ġ", "w"), ("o", "r"), ("Ġw", "or"), ("l", "d"), ("Ġwor", "ld")]
        var vocab = symbols
        for (left, right) in merges { vocab.append(left + right) }
        func quoted(_ text: String) -> String {
            var out = "\""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                default: out += scalar.value < 0x20 ? String(format: "\\u%04x", scalar.value) : String(scalar)
                }
            }
            return out + "\""
        }
        let vocabJSON = vocab.enumerated().map { "\(quoted($1)): \($0)" }.joined(separator: ", ")
        let mergesJSON = merges.map { quoted("\($0) \($1)") }.joined(separator: ", ")
        return """
            {"version": "1.0", "added_tokens": [{"id": \(vocab.count), "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
             "normalizer": null, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
             "post_processor": null, "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
             "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
               "vocab": {\(vocabJSON)}, "merges": [\(mergesJSON)]}}
            """
    }

    /// The checkpoint as a GGUF v3 file of `dtype` (F32 or F16) tensors with llama metadata.
    /// Just enough of a writer for seeds: q/k rows are not permuted.
    static func gguf(_ checkpoint: Checkpoint, dtype: DType) throws -> [UInt8] {
        guard let c = checkpoint.config, let naming = LlamaFamily.ggufNaming("llama") else { return [] }
        var bytes: [UInt8] = Array("GGUF".utf8)
        func u32(_ value: UInt32) { bytes += withUnsafeBytes(of: value.littleEndian) { Array($0) } }
        func u64(_ value: UInt64) { bytes += withUnsafeBytes(of: value.littleEndian) { Array($0) } }
        func string(_ text: String) {
            u64(UInt64(text.utf8.count))
            bytes += Array(text.utf8)
        }
        let integers: [(String, Int)] = [
            ("llama.context_length", c.maxPositionEmbeddings), ("llama.embedding_length", c.hiddenSize),
            ("llama.block_count", c.numHiddenLayers), ("llama.feed_forward_length", c.intermediateSize),
            ("llama.attention.head_count", c.numAttentionHeads), ("llama.attention.head_count_kv", c.numKeyValueHeads),
            ("llama.attention.key_length", c.headDim), ("llama.vocab_size", c.vocabSize),
        ]
        u32(3)
        u64(UInt64(checkpoint.tensors.count))
        u64(UInt64(integers.count + 3))
        string("general.architecture")
        u32(8)
        string("llama")
        for (key, value) in integers {
            string(key)
            u32(4)
            u32(UInt32(value))
        }
        for (key, value) in [("llama.attention.layer_norm_rms_epsilon", Float(c.normEps)), ("llama.rope.freq_base", Float(c.ropeTheta))] {
            string(key)
            u32(6)
            u32(value.bitPattern)
        }
        var data: [UInt8] = []
        for tensor in checkpoint.tensors {
            string(naming.gguf(fromHuggingFace: tensor.name) ?? tensor.name)
            u32(UInt32(tensor.shape.count))
            for dimension in tensor.shape.reversed() { u64(UInt64(dimension)) }
            u32(dtype == .f16 ? 1 : 0)
            u64(UInt64(data.count))
            let values = try Dequantize.floats(tensor)
            if dtype == .f16 {
                for value in values { data += withUnsafeBytes(of: HalfConversion.floatToF16(value).littleEndian) { Array($0) } }
            } else {
                data += values.withUnsafeBytes { Array($0) }
            }
            while data.count % 32 != 0 { data.append(0) }
        }
        while bytes.count % 32 != 0 { bytes.append(0) }
        return bytes + data
    }
}
