import Foundation
import Testing
@testable import QSEngine

@Suite struct GGUFReaderTests {
    @Test func readsEveryMetadataValueType() throws {
        let file = try GGUFFile(path: GGUFFixtures.tinyPath)
        #expect(file.version == 3)
        #expect(file.alignment == 64)
        #expect(file.dataOffset % 64 == 0)
        #expect(file["general.architecture"] == .string("llama"))
        #expect(file["test.u8"] == .uint8(200))
        #expect(file["test.i8"] == .int8(-100))
        #expect(file["test.u16"] == .uint16(60000))
        #expect(file["test.i16"] == .int16(-30000))
        #expect(file["test.u32"] == .uint32(4_000_000_000))
        #expect(file["test.i32"] == .int32(-2_000_000_000))
        #expect(file["test.f32"] == .float32(0.1))
        #expect(file["test.bool"] == .bool(true))
        #expect(file["test.string"] == .string("h\u{e9}llo w\u{f6}rld \u{2713}"))
        #expect(file["test.u64"] == .uint64(1 << 63 + 5))
        #expect(file["test.i64"] == .int64(-(1 << 62)))
        #expect(file["test.f64"] == .float64(3.141592653589793))
        #expect(file["test.array.strings"] == .array(.string, [.string("a"), .string("bc"), .string("")]))
        #expect(file["test.array.i32"] == .array(.int32, [.int32(1), .int32(-2), .int32(3)]))
        #expect(file["test.array.u64"] == .array(.uint64, [.uint64(1), .uint64(.max)]))
        #expect(file["test.array.u8"] == .array(.uint8, [.uint8(0), .uint8(255)]))
        #expect(file["test.array.f32"] == .array(.float32, [.float32(0.5), .float32(-1.25)]))
        #expect(file["test.array.bool"] == .array(.bool, [.bool(true), .bool(false)]))
        #expect(
            file["test.array.nested"]
                == .array(.array, [.array(.int32, [.int32(1), .int32(2)]), .array(.int32, [.int32(3)])]))
        #expect(
            file["test.array.nested_strings"]
                == .array(.array, [.array(.string, [.string("x")]), .array(.string, [.string("y"), .string("z")])]))
        #expect(file["test.missing"] == nil)
        #expect(file["tokenizer.ggml.tokens"]?.strings?.count == 64)
    }

    @Test func keepsMetadataInFileOrder() throws {
        let file = try GGUFFile(path: GGUFFixtures.tinyPath)
        let keys = file.metadata.map(\.key)
        let testKeys = keys.filter { $0.hasPrefix("test.") }
        #expect(testKeys.first == "test.u8")
        #expect(testKeys.last == "test.array.nested_strings")
        #expect(keys.firstIndex(of: "test.u8")! < keys.firstIndex(of: "test.f64")!)
        #expect(Set(keys).count == keys.count)
    }

    @Test func readsTensorInfos() throws {
        let file = try GGUFFile(path: GGUFFixtures.tinyPath)
        #expect(file.tensors.count == 12)
        let embedding = try #require(file.tensor(named: "token_embd.weight"))
        #expect(embedding.dimensions == [32, 64])
        #expect(embedding.shape == [64, 32])
        #expect(embedding.type == .q8_0)
        #expect(embedding.byteCount == 64 * 34)
        #expect(file.tensor(named: "blk.0.ffn_down.weight")?.type == .q4_K)
        #expect(file.tensor(named: "output.weight")?.type == .q6_K)
        for info in file.tensors {
            #expect(info.offset % file.alignment == 0)
            #expect(info.fileOffset == file.dataOffset + info.offset)
            #expect(info.fileOffset + info.byteCount <= file.file.count)
        }
    }

    @Test func mapsLlamaTensorsToHuggingFace() throws {
        let file = try GGUFFile(path: GGUFFixtures.tinyPath)
        let tensors = try file.storedTensors()
        let byName = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0) })
        #expect(
            Set(byName.keys) == [
                "model.embed_tokens.weight", "model.layers.0.input_layernorm.weight",
                "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
                "model.layers.0.self_attn.v_proj.weight", "model.layers.0.self_attn.o_proj.weight",
                "model.layers.0.post_attention_layernorm.weight", "model.layers.0.mlp.gate_proj.weight",
                "model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight", "model.norm.weight",
                "lm_head.weight",
            ])
        #expect(byName["model.layers.0.self_attn.q_proj.weight"]?.rotaryPermutationHeads == 4)
        #expect(byName["model.layers.0.self_attn.k_proj.weight"]?.rotaryPermutationHeads == 2)
        #expect(byName["model.layers.0.self_attn.v_proj.weight"]?.rotaryPermutationHeads == nil)
        #expect(byName["model.layers.0.mlp.down_proj.weight"]?.shape == [32, 256])
        #expect(byName["model.layers.0.mlp.down_proj.weight"]?.storedName == "blk.0.ffn_down.weight")
        #expect(byName["model.layers.0.self_attn.k_proj.weight"]?.dtype == .q4_0)
    }

    /// Every tensor, dequantized and un-permuted, matches what the gguf package and
    /// transformers' loader give (samples and float64 sums from tiny_llama.json).
    @Test func tensorValuesMatchReference() throws {
        let reference = try GGUFFixtures.json("tiny_llama.json") as! [String: Any]
        let summaries = (reference["tensors"] as! [Any]).map(TensorSummary.init)
        let file = try GGUFFile(path: GGUFFixtures.tinyPath)
        let tensors = Dictionary(uniqueKeysWithValues: try file.storedTensors().map { ($0.storedName, $0) })
        #expect(summaries.count == tensors.count)
        for summary in summaries {
            let tensor = try #require(tensors[summary.ggufName])
            #expect(tensor.shape == summary.hfShape)
            let values = try Dequantize.floats(tensor)
            #expect(summary.mismatch(values) == nil)
        }
    }

    @Test func modelConfigFromMetadata() throws {
        let config = try GGUFFile(path: GGUFFixtures.tinyPath).modelConfig()
        #expect(config.architecture == .llama)
        #expect(config.vocabSize == 64)
        #expect(config.hiddenSize == 32)
        #expect(config.intermediateSize == 256)
        #expect(config.numHiddenLayers == 1)
        #expect(config.numAttentionHeads == 4)
        #expect(config.numKeyValueHeads == 2)
        #expect(config.headDim == 8)
        #expect(config.maxPositionEmbeddings == 128)
        #expect(config.normEps == 1e-5)  // the float32 read as its shortest decimal
        #expect(config.ropeTheta == 10000)
        #expect(config.tieWordEmbeddings == false)
        #expect(config.bosTokenId == 1)
        #expect(config.eosTokenId == 2)
    }

    @Test(arguments: [
        ("blk.3.attn_q.weight", "model.layers.3.self_attn.q_proj.weight"),
        ("blk.12.attn_k.bias", "model.layers.12.self_attn.k_proj.bias"),
        ("blk.0.attn_output.weight", "model.layers.0.self_attn.o_proj.weight"),
        ("blk.0.ffn_gate.weight", "model.layers.0.mlp.gate_proj.weight"),
        ("blk.0.ffn_norm.weight", "model.layers.0.post_attention_layernorm.weight"),
        ("token_embd.weight", "model.embed_tokens.weight"),
        ("output_norm.weight", "model.norm.weight"),
        ("output.weight", "lm_head.weight"),
    ])
    func namesMapBothWays(gguf: String, huggingFace: String) {
        #expect(LlamaFamily.ggufNaming("llama")!.huggingFace(fromGGUF: gguf) == huggingFace)
        #expect(LlamaFamily.ggufNaming("llama")!.gguf(fromHuggingFace: huggingFace) == gguf)
    }

    @Test(arguments: ["rope_freqs.weight", "blk.x.attn_q.weight", "blk.01.attn_q.weight", "blk.0.attn_q", "blk.0.ffn_gate_exps.weight"])
    func unknownNamesHaveNoMapping(name: String) {
        #expect(LlamaFamily.ggufNaming("llama")!.huggingFace(fromGGUF: name) == nil)
    }
}

/// Files built byte by byte, each with one defect the reader must name.
@Suite struct GGUFReaderErrorTests {
    /// A GGUF writer just good enough to make broken files.
    struct Builder {
        var bytes: [UInt8] = []
        mutating func u32(_ value: UInt32) { bytes += withUnsafeBytes(of: value.littleEndian) { Array($0) } }
        mutating func u64(_ value: UInt64) { bytes += withUnsafeBytes(of: value.littleEndian) { Array($0) } }
        mutating func string(_ text: String) {
            u64(UInt64(text.utf8.count))
            bytes += Array(text.utf8)
        }
        mutating func header(version: UInt32 = 3, tensors: UInt64, metadata: UInt64) {
            bytes += Array("GGUF".utf8)
            u32(version)
            u64(tensors)
            u64(metadata)
        }
        mutating func tensor(_ name: String, dims: [UInt64], type: UInt32, offset: UInt64) {
            string(name)
            u32(UInt32(dims.count))
            for dim in dims { u64(dim) }
            u32(type)
            u64(offset)
        }
        mutating func pad(to alignment: Int = 32, extra: Int) {
            while bytes.count % alignment != 0 { bytes.append(0) }
            bytes += [UInt8](repeating: 0, count: extra)
        }
    }

    func open(_ builder: Builder) throws -> (path: String, error: EngineError?) {
        let path = GGUFFixtures.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(builder.bytes).write(to: URL(fileURLWithPath: path))
        do {
            let file = try GGUFFile(path: path)
            for tensor in try file.storedTensors() { _ = try Dequantize.floats(tensor) }
            _ = try file.modelConfig()
            return (path, nil)
        } catch let error as EngineError {
            return (path, error)
        }
    }

    func expectError(_ builder: Builder, subject: String? = nil, containing text: String) throws {
        let (path, error) = try open(builder)
        let found = try #require(error)
        #expect(found.path == path)
        #expect(found.subject == subject)
        #expect(found.message.contains(text), "\(found)")
    }

    @Test func badMagic() throws {
        var b = Builder()
        b.bytes = Array("GGML".utf8) + [3, 0, 0, 0]
        try expectError(b, containing: "expected the magic \"GGUF\"")
    }

    @Test func unsupportedVersions() throws {
        var b = Builder()
        b.header(version: 1, tensors: 0, metadata: 0)
        try expectError(b, containing: "version 1 (expected 3 or 2)")
        var big = Builder()
        big.header(version: 0x0300_0000, tensors: 0, metadata: 0)
        try expectError(big, containing: "big-endian")
    }

    @Test func hugeCounts() throws {
        var b = Builder()
        b.header(tensors: UInt64.max, metadata: 0)
        try expectError(b, containing: "tensor count")
        var m = Builder()
        m.header(tensors: 0, metadata: 1 << 40)
        try expectError(m, containing: "metadata entry count")
    }

    @Test func stringLongerThanFile() throws {
        var b = Builder()
        b.header(tensors: 0, metadata: 1)
        b.string("general.name")
        b.u32(8)
        b.u64(1 << 62)
        try expectError(b, subject: "general.name", containing: "length of a string value 4611686018427387904")
    }

    @Test func unknownValueType() throws {
        var b = Builder()
        b.header(tensors: 0, metadata: 1)
        b.string("weird")
        b.u32(13)
        try expectError(b, subject: "weird", containing: "unknown metadata value type 13")
    }

    @Test func arrayCountPastEnd() throws {
        var b = Builder()
        b.header(tensors: 0, metadata: 1)
        b.string("list")
        b.u32(9)
        b.u32(8)
        b.u64(1000)
        b.string("only one")
        try expectError(b, subject: "list", containing: "array length 1000")
    }

    @Test func deeplyNestedArrays() throws {
        var b = Builder()
        b.header(tensors: 0, metadata: 1)
        b.string("deep")
        b.u32(9)
        for _ in 0 ..< 100 {
            b.u32(9)
            b.u64(1)
        }
        try expectError(b, subject: "deep", containing: "nest deeper")
    }

    @Test func badBoolAndDuplicateKey() throws {
        var b = Builder()
        b.header(tensors: 0, metadata: 1)
        b.string("flag")
        b.u32(7)
        b.bytes.append(2)
        try expectError(b, subject: "flag", containing: "neither 0 nor 1")
        var d = Builder()
        d.header(tensors: 0, metadata: 2)
        for _ in 0 ..< 2 {
            d.string("k")
            d.u32(4)
            d.u32(1)
        }
        try expectError(d, subject: "k", containing: "appears twice")
    }

    @Test func badAlignment() throws {
        var b = Builder()
        b.header(tensors: 0, metadata: 1)
        b.string("general.alignment")
        b.u32(4)
        b.u32(48)
        try expectError(b, subject: "general.alignment", containing: "power of two")
    }

    @Test func unknownTensorType() throws {
        var b = Builder()
        b.header(tensors: 1, metadata: 0)
        b.tensor("w", dims: [32], type: 99, offset: 0)
        b.pad(extra: 128)
        try expectError(b, subject: "w", containing: "unknown ggml type id 99")
    }

    @Test func unsupportedTensorTypeNamesIt() throws {
        var b = Builder()
        b.header(tensors: 1, metadata: 0)
        b.tensor("w", dims: [256], type: 16, offset: 0)
        b.pad(extra: 66)
        try expectError(b, subject: "w", containing: "IQ2_XXS (ggml type id 16) is not supported")
    }

    @Test func tensorLayoutDefects() throws {
        var misaligned = Builder()
        misaligned.header(tensors: 1, metadata: 0)
        misaligned.tensor("w", dims: [4], type: 0, offset: 4)
        misaligned.pad(extra: 64)
        try expectError(misaligned, subject: "w", containing: "not a multiple of the alignment 32")

        var outside = Builder()
        outside.header(tensors: 1, metadata: 0)
        outside.tensor("w", dims: [32, 2], type: 0, offset: 0)
        outside.pad(extra: 255)
        try expectError(outside, subject: "w", containing: "runs past the end of the data section")

        var overlapping = Builder()
        overlapping.header(tensors: 2, metadata: 0)
        overlapping.tensor("a", dims: [16], type: 0, offset: 0)
        overlapping.tensor("b", dims: [16], type: 0, offset: 32)
        overlapping.pad(extra: 128)
        try expectError(overlapping, subject: "b", containing: "overlaps tensor 'a'")

        var partialBlock = Builder()
        partialBlock.header(tensors: 1, metadata: 0)
        partialBlock.tensor("q", dims: [33], type: 8, offset: 0)
        partialBlock.pad(extra: 64)
        try expectError(partialBlock, subject: "q", containing: "not a multiple of the Q8_0 block size 32")

        var overflowing = Builder()
        overflowing.header(tensors: 1, metadata: 0)
        overflowing.tensor("w", dims: [1 << 40, 1 << 40], type: 0, offset: 0)
        overflowing.pad(extra: 64)
        try expectError(overflowing, subject: "w", containing: "more elements than can be addressed")

        var tooManyDims = Builder()
        tooManyDims.header(tensors: 1, metadata: 0)
        tooManyDims.tensor("w", dims: [1, 1, 1, 1, 1], type: 0, offset: 0)
        tooManyDims.pad(extra: 64)
        try expectError(tooManyDims, subject: "w", containing: "has 5 dimensions")
    }

    @Test func truncatedHeaderNamesWhatWasBeingRead() throws {
        var b = Builder()
        b.header(tensors: 1, metadata: 0)
        b.string("model.layers.0.weight")
        b.u32(2)
        b.u64(32)
        try expectError(b, subject: "model.layers.0.weight", containing: "while reading dimension 1")
    }

    @Test func hugeHeadCountIsRejectedNotOverflowed() throws {
        var b = Builder()
        b.header(tensors: 1, metadata: 2)
        b.string("general.architecture")
        b.u32(8)
        b.string("llama")
        b.string("llama.attention.head_count")
        b.u32(10)
        b.u64(1 << 62)
        b.tensor("blk.0.attn_q.weight", dims: [4, 4], type: 0, offset: 0)
        b.pad(extra: 64)
        // Refused at the key, before any shape is computed from it.
        try expectError(b, subject: "llama.attention.head_count", containing: "larger than any model's")
    }

    @Test func missingConfigKeyIsNamed() throws {
        var b = Builder()
        b.header(tensors: 0, metadata: 1)
        b.string("general.architecture")
        b.u32(8)
        b.string("llama")
        try expectError(b, subject: "llama.attention.head_count", containing: "missing")
    }
}
