import Foundation
import QSEngine
import QSInterpreter
import QSLanguage

/// The inputs a hostile file or script can give qs, one fuzz target each.
package enum FuzzTarget: String, CaseIterable, Sendable {
    /// A model.safetensors beside a fitting config.json.
    case safetensors
    /// A whole GGUF file.
    case gguf
    /// A config.json beside the tiny model's tensors.
    case config
    /// A tokenizer.json.
    case tokenizer
    /// A .qs script, run in a session whose model is the tiny one.
    case qs
}

/// How far an input went.
package enum FuzzStage: Int, Comparable, Sendable {
    /// Refused with an error at once.
    case rejected
    /// Parsed (a file opened, a tokenizer read, a script checked), then an error.
    case parsed
    /// A model loaded, or a script ran, and then an error.
    case loaded
    /// A forward pass computed.
    case computed

    package static func < (a: FuzzStage, b: FuzzStage) -> Bool { a.rawValue < b.rawValue }
}

/// Runs one input of a fuzz target as far as it goes: parse, check, load, and a forward pass
/// of a tiny model where the input parses. Errors are the expected outcome of most inputs and
/// are dropped; what a fuzzer looks for is a crash, a hang or a leak. The same harness replays
/// committed inputs in the test suite, and `qs-fuzz` hands it libFuzzer's.
package final class FuzzHarness {
    /// The tiny llama every target computes with: 64 tokens, 16 wide, 2 blocks.
    package static let tinyConfig = """
        {"model_type": "llama", "vocab_size": 64, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
         "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8, "max_position_embeddings": 64,
         "rms_norm_eps": 1e-5, "tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2}
        """

    /// Scratch files of this harness (one folder per harness: tests make several at once).
    package let scratch: String
    /// A folder holding the tiny model (config.json, model.safetensors).
    package let tinyModel: String
    /// A session over the tiny model for the .qs target.
    private var session: Session?

    package init() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("qs-fuzz-\(getpid())-\(UUID().uuidString)").path
        tinyModel = scratch + "/tiny"
        for folder in [tinyModel, scratch + "/safetensors", scratch + "/config"] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        try Data(Self.tinyConfig.utf8).write(to: URL(fileURLWithPath: tinyModel + "/config.json"))
        try Data(Self.tinyConfig.utf8).write(to: URL(fileURLWithPath: scratch + "/safetensors/config.json"))
        let tensors = try Self.tinyTensors()
        _ = try SafetensorsWriter.write(tensors, metadata: ["format": "pt"], toFolder: tinyModel)
        _ = try SafetensorsWriter.write(tensors, metadata: ["format": "pt"], toFolder: scratch + "/config")
    }

    deinit { try? FileManager.default.removeItem(atPath: scratch) }

    /// The tiny llama's tensors, with small deterministic values.
    static func tinyTensors() throws -> [TensorToWrite] {
        let config = try ModelConfig(configJSON: Data(tinyConfig.utf8), path: "config.json")
        let table = LlamaFamily.modules(config)
        var specs: [(String, [Int])] = table.before.map { ($0.module, $0.weightShape.map(\.size)) }
        for layer in 0 ..< config.numHiddenLayers {
            specs += table.block.map { ("model.layers.\(layer).\($0.module)", $0.weightShape.map(\.size)) }
        }
        specs += table.after.map { ($0.module, $0.weightShape.map(\.size)) }
        var state: UInt64 = 1
        return try specs.map { module, shape in
            let count = shape.reduce(1, *)
            let norm = shape.count == 1
            let values: [Float] = (0 ..< count).map { _ in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return norm ? 1 : Float(Int(state >> 40) % 2001 - 1000) / 10_000
            }
            return try TensorToWrite(name: module + ".weight", dtype: .f32, shape: shape) { buffer in
                values.withUnsafeBytes { buffer.copyMemory(from: $0) }
            }
        }
    }

    /// Runs one input; how far it went.
    @discardableResult
    package func run(_ target: FuzzTarget, _ data: [UInt8]) -> FuzzStage {
        switch target {
        case .safetensors: loadAndRun(file: scratch + "/safetensors/model.safetensors", data, open: scratch + "/safetensors")
        case .gguf: loadAndRun(file: scratch + "/model.gguf", data, open: scratch + "/model.gguf")
        case .config: loadAndRun(file: scratch + "/config/config.json", data, open: scratch + "/config")
        case .tokenizer: tokenize(data)
        case .qs: script(data)
        }
    }

    /// Writes the input where the target reads it, opens the checkpoint, and computes with it.
    private func loadAndRun(file: String, _ data: [UInt8], open path: String) -> FuzzStage {
        guard (try? Data(data).write(to: URL(fileURLWithPath: file))) != nil else { return .rejected }
        guard let checkpoint = try? Checkpoint.open(path) else { return .rejected }
        _ = checkpoint.summary
        for tensor in checkpoint.tensors { _ = try? Dequantize.floats(tensor) }
        let tokenizer = try? Tokenizer.load(for: checkpoint)
        guard let model = try? ModelLoader.model(for: checkpoint) else { return .parsed }
        var ids = tokenizer.map { $0.encode("Hello world, 12 tokens é", addSpecialTokens: true) } ?? []
        if ids.isEmpty { ids = [1, 2, 3] }
        return compute(model, ids: Array(ids.prefix(16)))
    }

    /// A forward pass (and a short generation and evaluation) of whatever model loaded.
    private func compute(_ model: BlockModel, ids: [Int]) -> FuzzStage {
        if let lm = model as? CausalLanguageModel {
            guard (try? lm.forward(ids)) != nil else { return .loaded }
            _ = try? Generator.generate(model: lm, prompt: ids, maxTokens: 2)
            let measured = PerplexityProtocol(text: "fuzz", tokens: ids.count, context: 8, stride: 8, bos: false)
            _ = try? Perplexity.evaluate(model: lm, tokens: ids, measuredWith: measured)
            return .computed
        }
        if let encoder = model as? BERTModel, (try? encoder.sentenceEmbeddings([ids])) != nil { return .computed }
        return .loaded
    }

    /// Parses a tokenizer.json, encodes and decodes with it, writes it back, and runs the tiny
    /// model on what it encodes.
    private func tokenize(_ data: [UInt8]) -> FuzzStage {
        guard let tokenizer = try? Tokenizer(tokenizerJSON: Data(data), path: "tokenizer.json") else { return .rejected }
        var encoded: [Int] = []
        for text in ["Hello world", "  spaces\tand\nlines ", "é😀中文 [CLS] <s>", ""] {
            let ids = tokenizer.encode(text, addSpecialTokens: true)
            _ = tokenizer.decode(ids, skipSpecialTokens: false)
            encoded += ids
        }
        _ = try? tokenizer.tokenizerJSON()
        guard let model = try? ModelLoader.model(for: Checkpoint.open(tinyModel)) else { return .parsed }
        let ids = encoded.filter { $0 < model.config.vocabSize }.prefix(16)
        return ids.isEmpty ? .parsed : compute(model, ids: Array(ids))
    }

    /// Checks and runs a script in a session over the tiny model, with the commands that would
    /// reach the network, the disk or minutes of work replaced by bounded ones.
    private func script(_ data: [UInt8]) -> FuzzStage {
        let session = self.session ?? makeSession()
        self.session = session
        session.workspace.loaded = nil
        let file = SourceFile(name: "fuzz.qs", bytes: data)
        guard Parser.parse(file).diagnostics.isEmpty else { return .rejected }
        let ran = (try? session.run(file, checkFirst: true)) != nil
        if session.workspace.loaded != nil { return .computed }
        return ran ? .loaded : .parsed
    }

    private func makeSession() -> Session {
        let session = Session(output: { _ in })
        session.stepLimit = 20_000
        session.libraryDirectory = "/fuzz-lib"
        let library = Array("recipe twice(x) { print x\nprint x }\n".utf8)
        session.readFile = { path in
            guard path.hasPrefix("/fuzz-lib/") || path.hasSuffix("lib.qs") else { throw CommandError.failed("no such file") }
            return library
        }
        let tinyModel = tinyModel
        session.register(session.table["load"]!) { _, session in
            let checkpoint = try Checkpoint.open(tinyModel)
            session.workspace.loaded = try LoadedModel(name: "tiny", checkpoint: checkpoint)
            return .record(Record([("model", .string("tiny"))]))
        }
        session.register(session.table["fetch"]!) { _, _ in .record(Record([("name", .string("x"))])) }
        session.register(session.table["bench"]!) { _, _ in .record(Record([("prefill_tok_s", .number(1))])) }
        session.register(session.table["eval"]!) { invocation, session in
            let loaded = try session.workspace.requireModel()
            guard let lm = loaded.model as? CausalLanguageModel else { throw CommandError.failed("not causal") }
            let count = min(64, Int(invocation["tokens"]?.number ?? 16))
            let context = max(2, min(32, Int(invocation["ctx"]?.number ?? 8)))
            let ids = (0 ..< max(2, count)).map { ($0 * 7 + 3) % lm.config.vocabSize }
            let measured = PerplexityProtocol(text: "fuzz", tokens: ids.count, context: context, stride: context, bos: false)
            let r = try Perplexity.evaluate(model: lm, tokens: ids, measuredWith: measured, isCancelled: session.isCancelled)
            return .record(Record([("ppl", .number(r.perplexity))]))
        }
        session.register(session.table["generate"]!) { invocation, session in
            let loaded = try session.workspace.requireModel()
            guard let lm = loaded.model as? CausalLanguageModel else { throw CommandError.failed("not causal") }
            let result = try Generator.generate(model: lm, prompt: [1, 5, 9], maxTokens: min(4, Int(invocation["tokens"]?.number ?? 4)))
            return .record(Record([("tokens", .number(Double(result.tokens.count)))]))
        }
        return session
    }
}
