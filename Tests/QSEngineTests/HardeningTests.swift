import Foundation
import QSTestSupport
import Testing
@testable import QSEngine

/// What a hostile probe found past the parsers, each class at its mechanism: files that are not
/// regular, sizes a file states, paths that leave their folder, numbers without meaning, and
/// writes that could lose what a person had.
@Suite struct HardeningTests {
    static let arch = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("arch")

    static func temporaryFolder() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("qs-hard-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func copyFixture(_ name: String, to folder: String) throws -> String {
        let target = folder + "/" + name
        try FileManager.default.copyItem(atPath: arch.appendingPathComponent(name).path, toPath: target)
        return target
    }

    // MARK: Files that are not regular files

    /// A FIFO, a folder or a device where a model, its config.json or its tokenizer.json should
    /// be is an error saying what it is, at once: opening never waits for a writer.
    @Test func whatIsNotARegularFileIsRefusedWithoutBlocking() throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let fifo = folder + "/model.gguf"
        #expect(mkfifo(fifo, 0o600) == 0)
        let asModel = try #require(throws: EngineError.self) { try Checkpoint.open(fifo) }
        #expect(asModel.message.contains("is a FIFO"))
        #expect(try #require(throws: EngineError.self) { try Checkpoint.open("/dev/null") }.message.contains("character device"))
        #expect(try #require(throws: EngineError.self) { try SafetensorsFile(path: folder) }.message.contains("is a folder"))

        let model = try Self.copyFixture("llama", to: folder)
        try FileManager.default.removeItem(atPath: model + "/config.json")
        #expect(mkfifo(model + "/config.json", 0o600) == 0)
        #expect(try #require(throws: EngineError.self) { try Checkpoint.open(model) }.message.contains("is a FIFO"))
        try FileManager.default.removeItem(atPath: model + "/config.json")
        try FileManager.default.copyItem(atPath: Self.arch.appendingPathComponent("llama/config.json").path, toPath: model + "/config.json")
        #expect(mkfifo(model + "/tokenizer.json", 0o600) == 0)
        let checkpoint = try Checkpoint.open(model)
        #expect(try #require(throws: EngineError.self) { try Tokenizer.load(for: checkpoint) }.message.contains("is a FIFO"))
        #expect(FileAccess.problem(folder)?.message.contains("is a folder") == true)
    }

    // MARK: Sizes a file states

    /// A token id of 2^40 is refused, not 17 TB asked for; a large id that fits costs one entry.
    @Test func aHugeTokenIdAllocatesNothing() throws {
        let far = #"{"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0, "a": 1, "far": 1099511627776}}}"#
        let error = try #require(throws: EngineError.self) { try Tokenizer(tokenizerJSON: Data(far.utf8), path: "tokenizer.json") }
        #expect(error.message.contains("larger than any vocabulary"), "\(error)")
        let sparse = #"{"model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0, "a": 1, "far": 1073741824}}}"#
        let tokenizer = try Tokenizer(tokenizerJSON: Data(sparse.utf8), path: "tokenizer.json")
        #expect(tokenizer.token(of: 1 << 30) == "far")
        #expect(tokenizer.id(of: "far") == 1 << 30)
        // A BPE whose ids pass 2^31 was the tokenizer fuzzer's find: refused, not a trap.
        let bpe = #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 4294967297, "ab": 2}, "merges": ["a b"]}}"#
        #expect(throws: EngineError.self) { try Tokenizer(tokenizerJSON: Data(bpe.utf8), path: "tokenizer.json") }
    }

    // MARK: Paths that leave their place

    /// A shard index names files of its own folder only; an empty one is an error.
    @Test(arguments: ["../outside/x.safetensors", "sub/x.safetensors", "..", "/etc/x.safetensors", "a\\b.safetensors"])
    func shardPathsStayInTheirFolder(shard: String) throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let index = folder + "/model.safetensors.index.json"
        let escaped = shard.replacingOccurrences(of: "\\", with: "\\\\")
        try Data(#"{"weight_map": {"w": "\#(escaped)"}}"#.utf8).write(to: URL(fileURLWithPath: index))
        let error = try #require(throws: EngineError.self) { try SafetensorsCheckpoint.open(index) }
        #expect(error.message.contains("expected a file name in the same folder"))
        try Data(#"{"weight_map": {}}"#.utf8).write(to: URL(fileURLWithPath: index))
        #expect(try #require(throws: EngineError.self) { try SafetensorsCheckpoint.open(index) }.message.contains("lists no tensors"))
    }

    // MARK: Numbers without meaning

    /// A measurement that scores nothing is an error, not a perplexity of 1.
    @Test func perplexityOfNothingIsAnError() throws {
        let model = try #require(try ModelLoader.model(for: try Checkpoint.open(Self.arch.appendingPathComponent("llama").path)) as? CausalLanguageModel)
        let measured = PerplexityProtocol(text: "t", tokens: 5, context: 1, stride: 1, bos: false)
        let error = try #require(throws: EngineError.self) {
            try Perplexity.evaluate(model: model, tokens: [1, 2, 3, 4, 5], measuredWith: measured)
        }
        #expect(error.message.contains("no token was scored"))
    }

    /// NaN stays NaN: a cosine of NaN embeddings, a classification of them, and the weight or
    /// the activation where values first stop being finite is named.
    @Test func notANumberIsReportedWithWhereItAppeared() throws {
        #expect(EncoderEvaluation.cosine([1, Double.nan], [1.0, 1]).isNaN)
        #expect(EncoderEvaluation.cosine([0.0, 0], [1.0, 1]).isNaN)
        let bert = try #require(try ModelLoader.model(for: try Checkpoint.open(Self.arch.appendingPathComponent("bert").path)) as? BERTModel)
        #expect(try NonFiniteProbe.locate(bert, tokens: [1, 2, 3]) == nil)
        let name = try #require(bert.names.entry("layer.1.mlp.up")).weight
        var values = try bert.weights.floats(name)
        values[7] = .nan
        try bert.weights.replace(name, with: values)
        let located = try #require(try NonFiniteProbe.locate(bert, tokens: [1, 2, 3]))
        #expect(located.contains("layer.1.mlp.up") && located.contains("element 7"))
        let reference = try #require(try ModelLoader.model(for: try Checkpoint.open(Self.arch.appendingPathComponent("bert").path)) as? BERTModel)
        let fidelity = try EncoderEvaluation.fidelity(model: bert, reference: reference, sentences: [[1, 2, 3], [4, 5]], text: "t")
        #expect(fidelity.meanCosine.isNaN && fidelity.worstCosine.isNaN)
        let documents = [EncoderEvaluation.Document(label: 0, ids: [1, 2]), EncoderEvaluation.Document(label: 1, ids: [3, 4])]
        #expect(try EncoderEvaluation.nearestCentroidAccuracy(model: bert, train: documents, test: documents, classes: 2).isNaN)

        // Finite weights whose product overflows: the activation is named, not a weight.
        let llama = try #require(try ModelLoader.model(for: try Checkpoint.open(Self.arch.appendingPathComponent("llama").path)) as? CausalLanguageModel)
        for canonical in ["layer.0.mlp.gate", "layer.0.mlp.up"] {
            let name = try #require(llama.names.entry(canonical)).weight
            try llama.weights.replace(name, with: try llama.weights.floats(name).map { $0 * 3e38 })
        }
        let overflow = try #require(try NonFiniteProbe.locate(llama, tokens: [1, 2, 3]))
        #expect(overflow.contains("block 0"), "\(overflow)")
        let generation = try #require(throws: EngineError.self) { try Generator.generate(model: llama, prompt: [1, 2], maxTokens: 3) }
        #expect(generation.message.contains("logits are not finite") && generation.message.contains("block 0"))
    }

    // MARK: Nothing a person had is lost

    /// Converting into an existing folder needs `overwrite`, replaces only the files of the same
    /// names, keeps the rest, and never writes into a read-only folder or the working folder.
    @Test func convertKeepsWhatItDidNotWrite() throws {
        let folder = try Self.temporaryFolder()
        defer {
            chmod(folder + "/out", 0o755)
            try? FileManager.default.removeItem(atPath: folder)
        }
        let source = try Checkpoint.open(try Self.copyFixture("llama", to: folder))
        let out = folder + "/out"
        try Converter.convert(source, to: out, dtype: .f32)
        try Data("mine".utf8).write(to: URL(fileURLWithPath: out + "/notes.txt"))
        try FileManager.default.createDirectory(atPath: out + "/runs", withIntermediateDirectories: true)
        try Data("log".utf8).write(to: URL(fileURLWithPath: out + "/runs/1.txt"))
        let refused = try #require(throws: EngineError.self) { try Converter.convert(source, to: out, dtype: .f16) }
        #expect(refused.message.contains("already exists"))
        try Converter.convert(source, to: out, dtype: .f16, overwrite: true)
        #expect(try Checkpoint.open(out).tensors.allSatisfy { $0.dtype == .f16 })
        #expect(try String(contentsOfFile: out + "/notes.txt", encoding: .utf8) == "mine")
        #expect(try String(contentsOfFile: out + "/runs/1.txt", encoding: .utf8) == "log")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == ["llama", "out"])

        chmod(out, 0o555)
        #expect(try #require(throws: EngineError.self) { try Converter.convert(source, to: out, dtype: .f32, overwrite: true) }.message.contains("read-only"))
        chmod(out, 0o755)
        #expect(try Checkpoint.open(out).tensors.allSatisfy { $0.dtype == .f16 })

        // The working folder and the folders above it would be swapped out from under the process.
        for target in [".", "./", FileManager.default.currentDirectoryPath] {
            let error = try #require(throws: EngineError.self) { try Converter.convert(source, to: target, dtype: .f32, overwrite: true) }
            #expect(error.message.contains("current folder"), "\(target): \(error)")
        }
    }

    /// A temporary left by a write whose process died is removed by the next write to the same
    /// place; one of a live process is left alone.
    @Test func temporariesOfKilledWritesAreCleanedUp() throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let source = try Checkpoint.open(Self.arch.appendingPathComponent("llama").path)
        // pid 0x7FFFFFF0 is beyond any pid this machine hands out: its process is gone.
        let stale = folder + "/.out.qs-tmp-\(Int32.max - 15)-1234"
        let live = folder + "/.out.qs-tmp-\(getpid())-5678"
        for path in [stale, live] {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            try Data(count: 1000).write(to: URL(fileURLWithPath: path + "/model.safetensors"))
        }
        try Converter.convert(source, to: folder + "/out", dtype: .f32)
        #expect(!FileManager.default.fileExists(atPath: stale))
        #expect(FileManager.default.fileExists(atPath: live))
    }
}
