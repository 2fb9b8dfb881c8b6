import Foundation
import QSTestSupport
import Testing
@testable import QSEngine
@testable import QSInterpreter
@testable import QSLanguage

/// What a script or a command line can throw at qs: huge and deep values, import chains,
/// files that are not scripts, numbers that would mean nothing, and writes killed halfway.
@Suite struct HardeningCommandTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("QSEngineTests/Fixtures/arch")

    // MARK: Deep or huge values

    @Test(arguments: [
        ("let a = [1]\nfor i in [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21] { a = a + a }", "a list of 1048576 items"),
        ("let a = []\nfor i in [1,2,3,4,5,6,7,8,9,10] { for j in [1,2,3,4,5,6,7,8,9,10,11] { a = [a] } }", "lists nest more than 100 deep"),
        ("let s = \"xxxxxxxxxxxxxxxx\"\nfor i in [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21] { s = s + s }", "a string of 33554432 bytes"),
        ("let s = \"xxxxxxxxxxxxxxxx\"\nfor i in [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21] { s = \"{s}{s}\" }", "a string of 33554432 bytes"),
    ])
    func valuesPastTheLimitsAreErrorsAtTheirExpression(source: String, message: String) throws {
        let test = TestSession()
        let error = try #require(test.run(source))
        #expect(error.contains("main.qs:2:"), "\(error)")
        #expect(error.contains(message), "\(error)")
    }

    /// A chain of `use` deeper than the limit stops `qs run` and `qs check` at the same file.
    @Test func importChainsStopAtTheSameDepthInRunAndCheck() throws {
        var files: [String: String] = [:]
        for i in 0 ..< 5000 { files["/m/f\(i).qs"] = i < 4999 ? "use \"f\(i + 1).qs\"\n" : "print \"end\"\n" }
        let test = TestSession(files: files)
        let error = try #require(test.run(files["/m/f0.qs"]!, name: "/m/f0.qs"))
        #expect(error.contains("imports chain more than \(Checker.maxImportDepth) files deep"))
        let checked = test.session.check(SourceFile(name: "/m/f0.qs", text: files["/m/f0.qs"]!))
        #expect(checked.map(\.message) == ["imports chain more than \(Checker.maxImportDepth) files deep"])
        #expect(checked.first?.file.name == error.split(separator: ":").first.map(String.init))
        // A shorter chain runs to its end.
        var short: [String: String] = [:]
        for i in 0 ..< 20 { short["/m/f\(i).qs"] = i < 19 ? "use \"f\(i + 1).qs\"\n" : "print \"end\"\n" }
        let ok = TestSession(files: short)
        #expect(ok.run(short["/m/f0.qs"]!, name: "/m/f0.qs") == nil)
        #expect(ok.output == "end\n")
    }

    // MARK: Files that are not scripts

    @Test func aBinaryFileOrAFolderIsNotAScript() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("qs-script-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let binary = folder + "/model.gguf"
        try Data([0x47, 0x47, 0x55, 0x46, 3, 0, 0, 0] + [UInt8](repeating: 0xFF, count: 100)).write(to: URL(fileURLWithPath: binary))
        #expect(try #require(throws: EngineError.self) { try Session.readScript(binary) }.message.contains("not a text file"))
        #expect(try #require(throws: EngineError.self) { try Session.readScript(folder) }.message.contains("is a folder, not a script"))
        #expect(try #require(throws: EngineError.self) { try Session.readScript(folder + "/none.qs") }.message.contains("no such file"))
        #expect(try Session.readScript("/dev/null").isEmpty)
        let big = folder + "/big.qs"
        #expect(FileManager.default.createFile(atPath: big, contents: nil))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: big))
        try handle.truncate(atOffset: UInt64(Session.maxScriptBytes + 1))
        try handle.close()
        #expect(try #require(throws: EngineError.self) { try Session.readScript(big) }.message.contains("a script is at most 16 MB"))
    }

    // MARK: Numbers without meaning

    /// A model whose context is one position has no window that scores a token.
    @Test func aContextOfOnePositionScoresNothing() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("qs-ctx-\(UUID().uuidString)").path
        try FileManager.default.copyItem(atPath: Self.fixtures.appendingPathComponent("llama").path, toPath: folder)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let configPath = folder + "/config.json"
        let config = try String(contentsOfFile: configPath, encoding: .utf8)
            .replacingOccurrences(of: "\"max_position_embeddings\": 64", with: "\"max_position_embeddings\": 1")
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        let session = Session(output: { _ in })
        _ = try session.run("load \"\(folder)\"", name: "t.qs")
        let error = try #require(CommandContractTests.error(session, "eval ppl shakespeare"))
        #expect(error.contains("takes 1 position(s)") && error.contains("at least 2"), "\(error)")
    }

    static let realModels = ["QS_SMOLLM2_GGUF", "QS_MINILM_DIR", "QS_SHAKESPEARE_DIR"].allSatisfy { ProcessInfo.processInfo.environment[$0] != nil }

    /// NaN weights in MiniLM give cosines of NaN, reported with the layer where they are; one
    /// generated token has no decode speed rather than 0 tok/s.
    @Test(.enabled(if: realModels))
    func notANumberIsReportedAsNaNWithItsLayer() throws {
        let environment = ProcessInfo.processInfo.environment
        final class Reports: @unchecked Sendable { var list: [Diagnostic] = [] }
        let reports = Reports()
        let session = Session(output: { _ in })
        session.report = { reports.list.append($0) }
        _ = try session.run("load \"\(environment["QS_MINILM_DIR"]!)\"", name: "t.qs")
        let loaded = try #require(session.workspace.loaded)
        let name = try #require(loaded.model.names.entry("layer.2.attn.v")).weight
        var values = try loaded.weights.floats(name)
        values[100] = .nan
        try loaded.weights.replace(name, with: values)
        let record = try #require(try session.run("eval embed \"\(environment["QS_SHAKESPEARE_DIR"]!)\" sentences=3", name: "t.qs").record)
        #expect(record["cosine"]?.number?.isNaN == true && record["cosine_min"]?.number?.isNaN == true)
        let warning = try #require(reports.list.first { $0.severity == .warning })
        #expect(warning.message.contains("cosine, cosine_min are not finite"))
        #expect(warning.message.contains("layer.2.attn.v") && warning.message.contains("element 100"), "\(warning.message)")

        _ = try session.run("load \"\(environment["QS_SMOLLM2_GGUF"]!)\"", name: "t.qs")
        let one = try #require(try session.run("generate \"Hello\" tokens=1", name: "t.qs").record)
        #expect(one["tokens"] == .number(1) && one["decode_tok_s"] == nil)
        #expect(CommandContractTests.error(session, "bench prompt=1 gen=1")?.contains("between 2 and") == true)
        // compare= names a GGUF file that exists, before anything is measured.
        let missing = "/nonexistent-\(UUID().uuidString).gguf"
        #expect(CommandContractTests.error(session, "bench prompt=2 gen=2 compare=\"\(missing)\"")?.contains("\(missing) is not a file") == true)
        #expect(CommandContractTests.error(session, "bench prompt=2 gen=2 compare=\"\(environment["QS_SHAKESPEARE_DIR"]!)\"")?.contains("is not a file") == true)
        let notGGUF = FileManager.default.temporaryDirectory.appendingPathComponent("qs-compare-\(UUID().uuidString).bin").path
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: notGGUF))
        defer { try? FileManager.default.removeItem(atPath: notGGUF) }
        #expect(CommandContractTests.error(session, "bench prompt=2 gen=2 compare=\"\(notGGUF)\"")?.contains("does not end in .gguf") == true)
    }
}

/// 100 SIGKILLs at random moments of `qs convert` (QS_BIN, set by scripts/test) into a folder
/// that holds an earlier conversion and a file of the person's: after each, the folder holds
/// the old model or the new one, whole, and the person's file; the next write leaves no
/// temporary behind.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["QS_BIN"] != nil))
struct KilledWriteTests {
    /// A llama model of about 40 MB in fp32, so that a conversion takes long enough to be
    /// killed in the middle of its writes.
    static func makeModel(in folder: String) throws -> String {
        let model = folder + "/source"
        try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
        let config = """
            {"model_type": "llama", "vocab_size": 4096, "hidden_size": 256, "intermediate_size": 1024,
             "num_hidden_layers": 8, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256,
             "tie_word_embeddings": false}
            """
        try Data(config.utf8).write(to: URL(fileURLWithPath: model + "/config.json"))
        let c = try ModelConfig(configJSON: Data(config.utf8), path: "config.json")
        let table = LlamaFamily.modules(c)
        var specs: [(String, [Int])] = table.before.map { ($0.module, $0.weightShape.map(\.size)) }
        for layer in 0 ..< c.numHiddenLayers {
            specs += table.block.map { ("model.layers.\(layer).\($0.module)", $0.weightShape.map(\.size)) }
        }
        specs += table.after.map { ($0.module, $0.weightShape.map(\.size)) }
        var generator = TestGenerator(seed: 9)
        let tensors = try specs.map { module, shape in
            let values = generator.floats(shape.reduce(1, *), in: -0.05 ... 0.05)
            return try TensorToWrite(name: module + ".weight", dtype: .f32, shape: shape) { buffer in
                values.withUnsafeBytes { buffer.copyMemory(from: $0) }
            }
        }
        _ = try SafetensorsWriter.write(tensors, metadata: ["format": "pt"], toFolder: model)
        return model
    }

    /// The dtype the folder's model is in, checked whole: config.json and every tensor agree and
    /// every tensor is there.
    static func wholeModelDType(_ folder: String, tensors: Int) throws -> String {
        let checkpoint = try Checkpoint.open(folder)
        let dtypes = Set(checkpoint.tensors.map(\.dtype.rawValue))
        #expect(checkpoint.tensors.count == tensors)
        #expect(dtypes.count == 1)
        let dtype = try #require(dtypes.first)
        #expect(checkpoint.config?.torchDType == ["f16": "float16", "bf16": "bfloat16", "f32": "float32"][dtype])
        _ = try ModelLoader.model(for: checkpoint)
        return dtype
    }

    @Test func killedConversionsLeaveTheOldModelOrTheNew() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("qs-kill-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let source = try Self.makeModel(in: folder)
        let tensorCount = try Checkpoint.open(source).tensors.count
        let out = folder + "/out"
        let qs = ProcessInfo.processInfo.environment["QS_BIN"]!
        func convert(_ dtype: String) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: qs)
            process.arguments = ["convert", source, out, "--dtype", dtype, "--overwrite"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            return process
        }
        let first = try convert("bf16")
        first.waitUntilExit()
        #expect(first.terminationStatus == 0)
        // The shortest of three whole runs: one slowed by the tests running beside it would send
        // the kills past the end of most conversions.
        var full = Double.infinity
        for _ in 0 ..< 3 {
            let started = Date()
            let timed = try convert("f16")
            timed.waitUntilExit()
            full = min(full, Date().timeIntervalSince(started))
            #expect(timed.terminationStatus == 0)
        }
        try Data("mine".utf8).write(to: URL(fileURLWithPath: out + "/notes.txt"))

        var generator = TestGenerator(seed: 17)
        var seen: Set<String> = []
        var interrupted = 0
        for round in 0 ..< 110 {
            let dtype = round % 2 == 0 ? "bf16" : "f16"
            let process = try convert(dtype)
            // Every eleventh conversion runs to its end, so that the old model changes too; the
            // other 100 are killed at a random moment of their run.
            if round % 11 != 10 {
                usleep(UInt32(Double.random(in: 0 ... full, using: &generator) * 1e6))
                kill(process.processIdentifier, SIGKILL)
            }
            process.waitUntilExit()
            if process.terminationReason == .uncaughtSignal { interrupted += 1 }
            seen.insert(try Self.wholeModelDType(out, tensors: tensorCount))
            #expect(try String(contentsOfFile: out + "/notes.txt", encoding: .utf8) == "mine", "round \(round)")
        }
        // The model was old and new in turn, and most kills landed before the conversion ended.
        #expect(seen == ["f16", "bf16"])
        #expect(interrupted >= 50, "only \(interrupted) of 100 conversions were killed before they ended")
        let last = try convert("f32")
        last.waitUntilExit()
        #expect(last.terminationStatus == 0)
        #expect(try Self.wholeModelDType(out, tensors: tensorCount) == "f32")
        let left = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix(".") }
        #expect(left.isEmpty, "temporaries left: \(left)")
    }
}
