import Foundation
import Testing
@testable import QSEngine
@testable import QSInterpreter
@testable import QSLanguage

/// `save` and `export` on the tiny Llama (given a small byte-level BPE tokenizer): every format
/// and scheme loads back bit for bit (packed codes, scales, zero points and g_idx, or dense
/// values), GGUF blocks hold qs's quantization without rounding, structured pruning goes into
/// the configuration, qs.json records what ran, an interrupted save leaves nothing, and each
/// bad input is refused.
@Suite(.serialized) struct SaveCommandTests {
    /// The tiny Llama with a byte-level BPE tokenizer of its 96 ids (the 94 printable ASCII
    /// characters, "Ġ" and the merge "Ġ t"), in a fresh folder.
    static func model(_ name: String = "llama") throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("qs-save-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: QuantizeCommandTests.fixtures.appendingPathComponent(name), to: folder)
        var vocab = (33 ... 126).map { String(UnicodeScalar(UInt8($0))) }
        vocab += ["\u{120}", "\u{120}t"]
        let entries = vocab.enumerated().map { id, token in
            let escaped = token.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            return "\"\(escaped)\": \(id)"
        }.joined(separator: ", ")
        let tokenizer = """
            {"version": "1.0", "added_tokens": [], "normalizer": null,
             "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
             "post_processor": null, "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
             "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
                       "fuse_unk": false, "byte_fallback": false, "vocab": {\(entries)}, "merges": ["\u{120} t"]}}
            """
        try Data(tokenizer.utf8).write(to: folder.appendingPathComponent("tokenizer.json"))
        let lines = ["to be, or not to be, that is the question: whether tis nobler in the mind to suffer",
                     "the slings and arrows of outrageous fortune, or to take arms against a sea of troubles"]
        try Data((0 ..< 40).map { lines[$0 % 2] }.joined(separator: "\n").utf8).write(to: folder.appendingPathComponent("text.txt"))
        return folder
    }

    static func session(_ folder: URL) throws -> Session {
        let session = Session(output: { _ in })
        _ = try session.run("load \"\(folder.path)\"", name: "t.qs")
        return session
    }

    static let tokens = [3, 9, 14, 1, 27, 5, 40, 2, 94, 95]

    static func logits(_ session: Session) throws -> [Float] {
        let lm = try #require(session.workspace.loaded?.model as? CausalLanguageModel)
        return try lm.forward(tokens).data
    }

    /// Every tensor of the loaded model as held: the packed form when packed, else the values.
    static func held(_ session: Session) throws -> [String: (packed: PackedWeight?, values: [Float])] {
        let loaded = try #require(session.workspace.loaded)
        var out: [String: (PackedWeight?, [Float])] = [:]
        for name in loaded.weights.names {
            let weight = try loaded.weights.weight(name)
            if case .packed(let packed) = weight.form { out[name] = (packed, try weight.floats()) } else { out[name] = (nil, try weight.floats()) }
        }
        return out
    }

    static func temporary() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("qs-out-\(UUID().uuidString)")
    }

    /// Save then load gives the same tensors, bit for bit, for every format and scheme.
    @Test(arguments: [
        ("quantize layer.* bits=4 group=16 clip=none", ["gptq", "compressed-tensors", "hf"]),
        ("quantize layer.* bits=4 group=16 asym clip=none", ["gptq", "compressed-tensors"]),
        ("quantize layer.* bits=8 group=channel", ["gptq", "compressed-tensors"]),
        ("quantize layer.* bits=2 group=16 asym", ["compressed-tensors"]),
        ("quantize layer.* bits=3 group=32", ["compressed-tensors"]),
        ("calibrate text.txt samples=4 seqlen=16\nquantize layer.* bits=4 group=16 method=gptq act_order", ["gptq", "compressed-tensors"]),
        ("quantize layer.*.attn.* bits=8 group=channel\nquantize layer.*.mlp.* bits=4 group=16 asym", ["compressed-tensors"]),
        ("prune layer.* 2:4\nquantize layer.* bits=4 group=16", ["gptq", "compressed-tensors", "hf"]),
        ("prune layer.* 50%", ["compressed-tensors", "hf"]),
        ("quantize layer.* dtype=f8", ["compressed-tensors"]),
        ("quantize layer.* dtype=bf16", ["hf"]),
    ])
    func roundTripsBitForBit(recipe: String, formats: [String]) throws {
        let folder = try Self.model()
        defer { try? FileManager.default.removeItem(at: folder) }
        let session = try Self.session(folder)
        _ = try session.run(recipe.replacingOccurrences(of: "text.txt", with: "\"\(folder.appendingPathComponent("text.txt").path)\""), name: "t.qs")
        let before = try Self.held(session)
        let logits = try Self.logits(session)
        for format in formats {
            let out = Self.temporary()
            defer { try? FileManager.default.removeItem(at: out) }
            let dtype = recipe.contains("bf16") ? " dtype=bf16" : ""
            _ = try session.run("save \"\(out.path)\" format=\(format)\(dtype)", name: "t.qs")
            let reloaded = try Self.session(out)
            let after = try Self.held(reloaded)
            #expect(Set(after.keys) == Set(before.keys), "\(recipe) → \(format)")
            for (name, held) in before {
                let back = try #require(after[name], "\(name)")
                if format != "hf", let packed = held.packed, name.contains("layers") {
                    #expect(back.packed == packed, "\(recipe) → \(format): \(name) packed differently")
                }
                // dtype=bf16 writes every weight in bf16, the unquantized ones rounded.
                let expected = dtype.isEmpty ? held.values : held.values.map { HalfConversion.bf16ToFloat(HalfConversion.floatToBF16($0)) }
                #expect(back.values == expected, "\(recipe) → \(format): \(name) values differ")
            }
            if dtype.isEmpty { #expect(try Self.logits(reloaded) == logits, "\(recipe) → \(format)") }
            // compressed-tensors names the pruned layers: their zeros are their masks again.
            if format == "compressed-tensors" {
                let loaded = try #require(session.workspace.loaded), back = try #require(reloaded.workspace.loaded)
                for name in loaded.weights.names {
                    guard let mask = try loaded.weights.weight(name).mask else { continue }
                    let again = try #require(try back.weights.weight(name).mask, "\(name) lost its mask")
                    #expect(again.requested == (mask.requested == "2:4" ? "2:4" : nil))
                    #expect((0 ..< mask.count).allSatisfy { mask.isKept($0) || !again.isKept($0) }, "\(name)")
                }
            }
        }
    }

    /// GGUF: qs's int8/int4 g32 grids go in as Q8_0/Q4_0/Q4_1 blocks unchanged, q/k rows are
    /// permuted as llama.cpp expects (a GGUF loaded back computes the same logits), the tokenizer
    /// travels, and an explicit type that would round a quantized layer again needs `requantize`.
    @Test func exportsGGUFWithoutRoundingAgain() throws {
        let folder = try Self.model()
        defer { try? FileManager.default.removeItem(at: folder) }
        let session = try Self.session(folder)
        let out = Self.temporary()
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: out) }
        // f32: the same numbers, so the same logits, through llama.cpp's row permutation of q and k.
        let dense = try Self.logits(session)
        _ = try session.run("export \"\(out.path)/f32.gguf\" type=f32", name: "t.qs")
        let f32 = try Self.session(out.appendingPathComponent("f32.gguf"))
        #expect(try Self.logits(f32) == dense)
        let text = "to be, or not to be"
        #expect(try f32.workspace.loaded!.requireTokenizer().encode(text) == session.workspace.loaded!.requireTokenizer().encode(text))
        for (recipe, type) in [("bits=8 group=32", DType.q8_0), ("bits=4 group=32", .q4_0), ("bits=4 group=32 asym", .q4_1)] {
            _ = try session.run("reset\nquantize layer.* \(recipe) clip=none", name: "t.qs")
            let held = try Self.held(session)
            let logits = try Self.logits(session)
            let path = out.appendingPathComponent("\(type.rawValue).gguf").path
            let record = try #require(try session.run("export \"\(path)\" overwrite", name: "t.qs").record)
            #expect(record["exact"] == .number(14), "\(recipe)")
            let back = try Self.session(URL(fileURLWithPath: path))
            let loaded = try #require(back.workspace.loaded)
            for (name, value) in held where name.contains("layers") && value.packed != nil {
                #expect(loaded.weights.storedTensor(name)?.dtype == type, "\(name)")
                let back = try loaded.weights.weight(name).floats()
                if type == .q4_1 {
                    // Codes and scales unchanged; the offset −scale·zero is stored in f16.
                    let largest = value.values.map(abs).max() ?? 0
                    #expect(zip(back, value.values).allSatisfy { abs($0 - $1) <= largest * 1e-3 }, "\(recipe): \(name)")
                } else {
                    #expect(back == value.values, "\(recipe): \(name)")
                }
            }
            // Unquantized matrices (the embedding, the head) go in as f16 under type=auto.
            let error = zip(try Self.logits(back), logits).map { abs($0 - $1) }.max() ?? 0
            #expect(error < 1e-2, "\(recipe)")
        }
        // Q4_1 held, Q4_0 asked for: refused, naming the layers, unless requantize.
        let q4_0 = out.appendingPathComponent("x.gguf").path
        #expect(throws: (any Error).self) { try session.run("export \"\(q4_0)\" type=q4_0", name: "t.qs") }
        #expect(!FileManager.default.fileExists(atPath: q4_0))
        let record = try #require(try session.run("export \"\(q4_0)\" type=q4_0 requantize", name: "t.qs").record)
        if case .list(let items)? = record["requantized"] { #expect(items.count == 14) } else { Issue.record("no requantized list") }
        // Unquantized weights to Q8_0 are the reference blocks of their values (bit-exactness
        // against llama.cpp's quantizer is GGMLQuantizeTests' fixture).
        _ = try session.run("reset\nexport \"\(out.path)/q8.gguf\" type=q8_0", name: "t.qs")
        let q8 = try Self.session(out.appendingPathComponent("q8.gguf"))
        let up = "model.layers.1.mlp.up_proj.weight"
        let stored = try #require(q8.workspace.loaded?.weights.storedTensor(up))
        let expected = GGMLQuantize.quantize(try session.workspace.loaded!.weights.weight(up).floats(), as: .q8_0)
        #expect(stored.withBytes { Array($0) } == expected)
    }

    /// Structured pruning is in the saved configuration; the saved model computes what the
    /// pruned one did.
    @Test func structuredPruningGoesIntoTheConfiguration() throws {
        let folder = try Self.model()
        defer { try? FileManager.default.removeItem(at: folder) }
        let session = try Self.session(folder)
        _ = try session.run("prune layer.* neurons=25% uniform by=l2\nprune layer.* heads=50% uniform by=l2", name: "t.qs")
        let logits = try Self.logits(session)
        let out = Self.temporary()
        defer { try? FileManager.default.removeItem(at: out) }
        _ = try session.run("save \"\(out.path)\"\nexport \"\(out.path)/m.gguf\" type=f32", name: "t.qs")
        let reloaded = try Self.session(out)
        let config = try #require(reloaded.workspace.loaded?.config)
        #expect(config.intermediateSize == 48 && config.numAttentionHeads == 2 && config.numKeyValueHeads == 1 && config.headDim == 8)
        #expect(try Self.logits(reloaded) == logits)
        #expect(try Self.logits(try Self.session(out.appendingPathComponent("m.gguf"))) == logits)
        // Counts that vary by block have no configuration.
        _ = try session.run("reset\nprune layer.* neurons=30% by=l2", name: "t.qs")
        let sizes = try (0 ..< 2).map { try session.workspace.loaded!.weights.weight("model.layers.\($0).mlp.up_proj.weight").outFeatures }
        #expect(sizes[0] != sizes[1], "one ranking across the blocks left them the same width: the refusal below tests nothing")
        #expect(throws: (any Error).self) { try session.run("save \"\(Self.temporary().path)\"", name: "t.qs") }
    }

    /// qs.json records the commands with their lines, the source and its hash, the calibration
    /// and the results.
    @Test func provenanceRecordsWhatRan() throws {
        let folder = try Self.model()
        defer { try? FileManager.default.removeItem(at: folder) }
        let session = try Self.session(folder)
        let text = folder.appendingPathComponent("text.txt").path
        _ = try session.run("calibrate \"\(text)\" samples=4 seqlen=16\nquantize layer.* bits=4 group=16", name: "recipe.qs")
        let out = Self.temporary()
        defer { try? FileManager.default.removeItem(at: out) }
        _ = try session.run("save \"\(out.path)\"", name: "recipe.qs")
        let json = try StrictJSON.parse([UInt8](try Data(contentsOf: out.appendingPathComponent("qs.json"))))
        guard case .array(let commands)? = json["commands"] else { Issue.record("no commands"); return }
        #expect(commands.map { $0["command"] } == ["load", "calibrate", "quantize"].map { .string($0) })
        #expect(commands[2]["line"] == .integer(2) && commands[2]["file"] == .string("recipe.qs"))
        #expect(commands[2]["source"] == .string("quantize layer.* bits=4 group=16"))
        #expect(json["calibration"]?["samples"] == .integer(4))
        guard case .array(let files)? = json["source"]?["files"] else { Issue.record("no files"); return }
        let weights = files.first { $0["file"] == .string("model.safetensors") }
        #expect(weights?["sha256"] == .string(try Fetcher.sha256(ofFile: folder.appendingPathComponent("model.safetensors").path)))
        #expect(json["qs_version"] == .string(QSVersion.number))
    }

    /// Ctrl-C at any point of a save or export leaves the old output or nothing: no partial
    /// folder, no temporary left beside it.
    @Test func interruptedSavesLeaveNoPartialOutput() throws {
        let folder = try Self.model()
        defer { try? FileManager.default.removeItem(at: folder) }
        let session = try Self.session(folder)
        _ = try session.run("quantize layer.* bits=4 group=16", name: "t.qs")
        let parent = Self.temporary()
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: parent) }
        let out = parent.appendingPathComponent("m")
        let tensorCount = session.workspace.loaded!.weights.names.count
        for stopAt in [1, 2, tensorCount / 2, tensorCount - 1] {
            for command in ["save \"\(out.path)\" format=gptq", "export \"\(out.path).gguf\""] {
                var calls = 0
                session.isCancelled = {
                    calls += 1
                    return calls >= stopAt
                }
                #expect(throws: (any Error).self) { try session.run(command, name: "t.qs") }
                session.isCancelled = { false }
                #expect(try FileManager.default.contentsOfDirectory(atPath: parent.path).isEmpty, "\(command) stopped at \(stopAt)")
            }
        }
        // An existing folder replaced with overwrite and interrupted keeps its old files.
        _ = try session.run("save \"\(out.path)\"", name: "t.qs")
        let old = try Data(contentsOf: out.appendingPathComponent("model.safetensors"))
        var calls = 0
        session.isCancelled = {
            calls += 1
            return calls >= 3
        }
        #expect(throws: (any Error).self) { try session.run("save \"\(out.path)\" format=gptq overwrite", name: "t.qs") }
        session.isCancelled = { false }
        #expect(try Data(contentsOf: out.appendingPathComponent("model.safetensors")) == old)
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent.path) == ["m"])
    }

    /// Bad input: refused with what was expected, nothing written.
    @Test func badInputIsRefused() throws {
        let folder = try Self.model()
        defer { try? FileManager.default.removeItem(at: folder) }
        let session = try Self.session(folder)
        func refused(_ command: String, _ expected: String) {
            do {
                _ = try session.run(command, name: "t.qs")
                Issue.record("\(command) was accepted")
            } catch {
                #expect("\(error)".contains(expected), "\(command): \(error)")
            }
        }
        let out = Self.temporary()
        defer { try? FileManager.default.removeItem(at: out) }
        refused("save \"\(folder.path)\" overwrite", "loaded")
        refused("save \"\(out.path)\" format=gptq", "no layer is quantized")
        _ = try session.run("quantize layer.*.mlp.* bits=4 group=16", name: "t.qs")
        refused("save \"\(out.path)\" format=gptq", "is not quantized")
        _ = try session.run("quantize layer.*.attn.* bits=8 group=channel", name: "t.qs")
        refused("save \"\(out.path)\" format=gptq", "one scheme")
        _ = try session.run("save \"\(out.path)\" format=compressed-tensors", name: "t.qs")
        refused("save \"\(out.path)\"", "already exists")
        refused("export \"\(out.path)/m.bin\"", ".gguf")
        refused("export \"\(out.path)/m.gguf\" type=q4_0", "requantize")
        refused("export \"\(out.path)/missing/m.gguf\"", "does not exist")
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("m.gguf").path))
        // GPT-2's configuration cannot describe removed heads; BERT has no llama.cpp GGUF here.
        let gpt2 = try Self.model("gpt2")
        defer { try? FileManager.default.removeItem(at: gpt2) }
        let other = try Self.session(gpt2)
        _ = try other.run("prune layer.* heads=50% uniform by=l2", name: "t.qs")
        do {
            _ = try other.run("save \"\(Self.temporary().path)\"", name: "t.qs")
            Issue.record("a head-pruned gpt2 was saved")
        } catch {
            #expect("\(error)".contains("cannot describe removed heads"))
        }
    }
}
