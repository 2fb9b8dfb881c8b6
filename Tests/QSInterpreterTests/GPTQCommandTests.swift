import Foundation
import Testing
@testable import QSEngine
@testable import QSInterpreter
@testable import QSLanguage

/// `calibrate`, `quantize ... method=gptq` and `report quant` on a tiny Llama that the test
/// gives a small WordPiece tokenizer: reproducible windows, GPTQ below RTN in every layer's
/// output error, the output errors `report quant` gives, and each bad input at its option.
@Suite struct GPTQCommandTests {
    /// The tiny Llama of the fixtures with a tokenizer of 61 lower-case WordPiece tokens, and a
    /// text to calibrate on, in a fresh folder.
    static func model(_ name: String = "llama") throws -> (folder: URL, text: URL) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("qs-gptq-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: QuantizeCommandTests.fixtures.appendingPathComponent(name), to: folder)
        var vocab: [(String, Int)] = [("[UNK]", 0)]
        let letters = "abcdefghijklmnopqrstuvwxyz".map(String.init)
        for letter in letters { vocab.append((letter, vocab.count)) }
        for letter in letters { vocab.append(("##" + letter, vocab.count)) }
        for mark in [".", ",", ";", ":", "!", "?", "'", "-"] { vocab.append((mark, vocab.count)) }
        let entries = vocab.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ")
        let tokenizer = """
            {"version": "1.0", "added_tokens": [{"id": 0, "content": "[UNK]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
             "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
             "pre_tokenizer": {"type": "BertPreTokenizer"}, "post_processor": null, "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
             "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": {\(entries)}}}
            """
        try Data(tokenizer.utf8).write(to: folder.appendingPathComponent("tokenizer.json"))
        let lines = [
            "To be, or not to be, that is the question: whether tis nobler in the mind to suffer",
            "the slings and arrows of outrageous fortune, or to take arms against a sea of troubles",
            "and by opposing end them. To die, to sleep; no more; and by a sleep to say we end",
        ]
        let text = folder.appendingPathComponent("text.txt")
        try Data((0 ..< 30).map { lines[$0 % 3] }.joined(separator: "\n").utf8).write(to: text)
        return (folder, text)
    }

    static func session(_ calibrate: String? = "samples=8 seqlen=32") throws -> (Session, URL, URL) {
        let (folder, text) = try model()
        let session = Session(output: { _ in })
        _ = try session.run("load \"\(folder.path)\"", name: "t.qs")
        if let calibrate { _ = try session.run("calibrate \"\(text.path)\" \(calibrate)", name: "t.qs") }
        return (session, folder, text)
    }

    /// The quantization recipes of stdlib/quantize.qs on every architecture's tiny model.
    @Test(arguments: ["llama", "qwen2", "mistral", "gpt2", "bert"])
    func stdlibRecipesRunOnEveryArchitecture(name: String) throws {
        let (folder, text) = try Self.model(name)
        defer { try? FileManager.default.removeItem(at: folder) }
        let stdlib = DocsAndRecipesTests.root.appendingPathComponent("stdlib").path
        let session = Session(output: { _ in }, libraryDirectory: stdlib)
        _ = try session.run("load \"\(folder.path)\"\nuse quantize", name: "t.qs")
        let loaded = try #require(session.workspace.loaded)
        let linear = try #require(loaded.model.names.entries.first { if case .linear = $0.kind { true } else { false } })
        for (call, form) in [
            ("int8_channel", "int8 channel asym"), ("int4_rtn group=16", "int4 g16"),
            ("int4_gptq text=\"\(text.path)\" samples=4 seqlen=16 group=16", "int4 g16"),
            ("int4_awq text=\"\(text.path)\" samples=4 seqlen=16 group=16", "int4 g16"),
            ("w8a8_smoothquant text=\"\(text.path)\" samples=4 seqlen=16", "int8 channel"),
        ] {
            _ = try session.run("reset\n" + call, name: "t.qs")
            #expect(try loaded.weights.weight(linear.weight).formName == form, "\(name): \(call)")
            #expect((loaded.weights.activationQuantization(linear.weight) != nil) == call.hasPrefix("w8a8"), "\(name): \(call)")
            #expect(try loaded.weights.weight(try #require(loaded.model.names.entries.first { $0.kind == .norm }).weight).isQuantized == false)
        }
        // mixed_4_8: int4 g16 takes 5 bits a weight and int8 g16 9, so a target of 6 puts some
        // layers at 8 bits and most at 4, within the target; the same plan as autoquant's.
        let linears = loaded.model.names.entries.filter { if case .linear = $0.kind { $0.canonical.hasPrefix("layer.") } else { false } }
        for method in ["rtn", "gptq"] {
            let options = "samples=4 seqlen=16 group=16 target=6"
            let record = try #require(try session.run("reset\nmixed_4_8 text=\"\(text.path)\" \(options) method=\"\(method)\"", name: "t.qs").record)
            #expect(try #require(record["layer_bits_per_weight"]?.number) <= 6, "\(name) \(method)")
            let forms = try linears.map { try loaded.weights.weight($0.weight).formName }
            #expect(Set(forms) == ["int4 g16", "int8 g16"], "\(name) \(method): \(Set(forms))")
            #expect(forms.filter { $0 == "int4 g16" }.count > forms.count / 2, "\(name) \(method)")
            _ = try session.run("reset\ncalibrate \"\(text.path)\" samples=4 seqlen=16\nautoquant layer.* candidates=[4, 8] \(options) method=\(method)", name: "t.qs")
            #expect(try linears.map { try loaded.weights.weight($0.weight).formName } == forms, "\(name) \(method)")
        }
    }

    /// An option's allowed word stays that word where a variable has its name: `let gptq = 3`
    /// must not turn `method=gptq` into `method=3` (check-training's `let wanda = ...` did).
    @Test func anAllowedWordIsNotShadowedByAVariable() throws {
        let (session, folder, _) = try Self.session()
        defer { try? FileManager.default.removeItem(at: folder) }
        let record = try #require(try session.run("let gptq = 3\nlet mse = 1\nquantize layer.* bits=4 group=16 method=gptq clip=mse", name: "t.qs").record)
        #expect(record["method"]?.text == "gptq")
        // A value that is not an allowed word still reads the variable.
        let chosen = try #require(try session.run("let m = \"rtn\"\nquantize layer.* bits=4 group=16 method=m", name: "t.qs").record)
        #expect(chosen["method"]?.text == "rtn")
    }

    @Test func calibrationWindowsAreReproducible() throws {
        let (session, folder, text) = try Self.session(nil)
        defer { try? FileManager.default.removeItem(at: folder) }
        func windows(_ options: String) throws -> [[Int]] {
            let record = try #require(try session.run("calibrate \"\(text.path)\" \(options)", name: "t.qs").record)
            #expect(record["tokens"] == .number(Double(try #require(session.workspace.calibration?.samples)) * 32))
            return try #require(session.workspace.calibration?.drawn?.set.windows)
        }
        let first = try windows("samples=6 seqlen=32 seed=3")
        #expect(first.count == 6 && first.allSatisfy { $0.count == 32 })
        #expect(try windows("samples=6 seqlen=32 seed=3") == first)
        #expect(try windows("samples=6 seqlen=32 seed=4") != first)
        // The `seed` setting is the default seed.
        _ = try session.run("set seed=3", name: "t.qs")
        #expect(try windows("samples=6 seqlen=32") == first)
        // Every window is a run of the text's tokens.
        let tokenizer = try #require(session.workspace.loaded?.tokenizer)
        let ids = tokenizer.encode(try String(contentsOf: text, encoding: .utf8), addSpecialTokens: false)
        for window in first {
            #expect((0 ... ids.count - 32).contains { Array(ids[$0 ..< $0 + 32]) == window })
        }
    }

    /// GPTQ's purpose on a model: every layer's output error on its calibration inputs below
    /// RTN's on the same grid (block 0's layers see the same inputs either way).
    @Test func gptqLowersEveryLayersOutputErrorBelowRTN() throws {
        let (session, folder, _) = try Self.session()
        defer { try? FileManager.default.removeItem(at: folder) }
        func errors(_ command: String) throws -> [String: Double] {
            _ = try session.run("reset\n" + command, name: "t.qs")
            let report = try #require(try session.run("report quant layer.0.*", name: "t.qs").record)
            guard case .list(let rows)? = report["layers"] else { Issue.record("no rows"); return [:] }
            var out: [String: Double] = [:]
            for row in rows {
                let record = try #require(row.record)
                out[try #require(record["layer"]?.text)] = try #require(record["output_error"]?.number)
            }
            return out
        }
        let rtn = try errors("quantize layer.0.* bits=3 group=16 clip=none")
        let gptq = try errors("quantize layer.0.* bits=3 group=16 method=gptq")
        let ordered = try errors("quantize layer.0.* bits=3 group=16 method=gptq act_order")
        #expect(rtn.count == 7 && gptq.count == 7 && ordered.count == 7)
        for (layer, error) in rtn {
            #expect(try #require(gptq[layer]) < error, "\(layer): GPTQ \(gptq[layer] ?? 0) against RTN \(error)")
            #expect(try #require(ordered[layer]) < error, "\(layer): GPTQ act_order \(ordered[layer] ?? 0) against RTN \(error)")
        }
        // The quantize record's output error is what report quant measures where the inputs are
        // the same after quantization (q, k and v read the embeddings; o and the MLP read
        // what the quantized layers before them make).
        _ = try session.run("reset", name: "t.qs")
        let record = try #require(try session.run("quantize layer.0.attn.* bits=3 group=16 method=gptq exclude=layer.0.attn.o", name: "t.qs").record)
        let mean = try ["q", "k", "v"].map { try #require(gptq["layer.0.attn.\($0)"]) }.reduce(0, +) / 3
        #expect(abs(try #require(record["output_error"]?.number) - mean) < 1e-3 * mean)
        #expect(try Self.layerForms(session)["layer.0.attn.v"] == "int3 g16")
        #expect(try Self.layerForms(session)["layer.0.attn.o"] == "f32")
    }

    static func layerForms(_ session: Session) throws -> [String: String] { try QuantizeCommandTests.forms(session) }

    @Test(arguments: [
        ("quantize layer.* method=gptq", "t.qs:1:18:", "calibrate TEXT"),
        ("quantize layer.* act_order", "t.qs:1:18:", "option of method=gptq"),
        ("quantize layer.* damp=0.1", "t.qs:1:18:", "option of method=gptq"),
        ("quantize layer.* bits=1 method=gptq", "t.qs:1:18:", "2 to 8 bits"),
        ("quantize embed bits=8 method=gptq", "t.qs:1:10:", "method=rtn"),
        ("quantize layer.* dtype=f16 act_order", "t.qs:1:28:", "takes no act_order"),
    ])
    func badInputIsADiagnosticAtItsOption(source: String, place: String, phrase: String) throws {
        let (session, folder, _) = try Self.session(source == "quantize layer.* method=gptq" ? nil : "samples=4 seqlen=16")
        defer { try? FileManager.default.removeItem(at: folder) }
        let error = try #require(CommandContractTests.error(session, source))
        #expect(error.hasPrefix(place), "\(error)")
        #expect(error.contains(phrase), "\(error)")
        #expect(session.workspace.loaded?.isModified == false)
    }

    @Test func calibrationBadInput() throws {
        let (session, folder, text) = try Self.session(nil)
        defer { try? FileManager.default.removeItem(at: folder) }
        let long = try #require(CommandContractTests.error(session, "calibrate \"\(text.path)\" seqlen=65"))
        #expect(long.contains("longer than") && long.contains("(64)"), "\(long)")
        let short = folder.appendingPathComponent("short.txt")
        try Data("to be".utf8).write(to: short)
        let few = try #require(CommandContractTests.error(session, "calibrate \"\(short.path)\" seqlen=32"))
        #expect(few.contains("fewer than one window of 32"), "\(few)")
        let missing = try #require(CommandContractTests.error(session, "calibrate \"\(folder.path)/none.txt\""))
        #expect(missing.contains("no such text file"), "\(missing)")
    }

    /// Ctrl-C during GPTQ leaves the model as it was before the command, never half quantized.
    @Test func cancelledGPTQChangesNothing() throws {
        let (session, folder, _) = try Self.session()
        defer { try? FileManager.default.removeItem(at: folder) }
        _ = try session.run("quantize layer.* bits=8", name: "t.qs")
        let before = try Self.layerForms(session)
        final class Polls: @unchecked Sendable { var count = 0 }
        let polls = Polls()
        session.isCancelled = {
            polls.count += 1
            return polls.count > 30
        }
        let error = try #require(CommandContractTests.error(session, "quantize layer.* bits=4 group=16 method=gptq"))
        #expect(error.contains("cancelled"))
        #expect(try Self.layerForms(session) == before)
        #expect(polls.count > 30)
    }
}
