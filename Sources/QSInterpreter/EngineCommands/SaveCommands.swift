import Foundation
import QSEngine
import QSLanguage

/// `save`: the model as held now, as a checkpoint folder other tools load.
enum SaveCommand: Command {
    static let spec = CommandSpec(
        "save", summary: "Save the model as held now: a Hugging Face folder, dense, GPTQ or compressed-tensors.",
        discussion: """
            The default format, `hf`, writes every weight dense in `dtype` (quantized layers as their dequantized values, pruned zeros kept), safetensors sharded with an index past `shard_mb`, config.json with the structure as held (heads and MLP widths after structured pruning), the tokenizer files, and qs.json: the commands that ran since `load` with their source lines, qs's version, the source model and the sha256 of its files, the calibration and the metrics measured; and report.html, the page `report html` writes, of the session so far. `format=gptq` writes AutoGPTQ's v1 layout (qweight, qzeros, scales, g_idx; 2, 3, 4 or 8 bits, one scheme for every block layer) with its quantization_config, as transformers' GPTQ integration reads it; `format=compressed-tensors` writes llm-compressor's layout (pack-quantized; int-quantized when every layer is 8-bit; float-quantized for f8; one config group per scheme, so mixed precision holds; sparsity_config when pruned). A layer whose quantization the format cannot hold is refused, naming it; `requantize` quantizes such layers again by RTN instead and says which. `load` reads every format back into the same packed weights.
            The folder is written under a temporary name and swapped in whole: an error, a full disk or Ctrl-C leaves the old folder or nothing. An existing folder needs `overwrite` (its other files are kept); the loaded model's own files are never written to.
            """,
        positionals: [ArgumentSpec("folder", .path, help: "the output folder", required: true)],
        options: [
            ArgumentSpec("format", .word, help: "hf (dense), gptq or compressed-tensors", default: .word("hf"), allowed: SaveFormat.allCases.map(\.rawValue)),
            ArgumentSpec("dtype", .word, help: "the type of weights written dense", default: .word("f32"), allowed: ["f32", "f16", "bf16"]),
            ArgumentSpec("shard_mb", .integer, help: "shard the safetensors past this many MB", default: .number(5000), range: 1...1_000_000),
        ],
        flags: [
            FlagSpec("overwrite", help: "replace the model files of an existing folder (its other files are kept)"),
            FlagSpec("requantize", help: "quantize again by RTN the layers the format cannot hold as they are"),
        ],
        resultFields: [
            ("path", "the folder"), ("format", "hf, gptq or compressed-tensors"), ("files", "the files written"),
            ("bytes", "bytes of the tensors written"), ("size_mb", "the same in MB"), ("requantized", "layers quantized again, with how"),
        ],
        examples: ["save out/smol", "save out/smol-gptq format=gptq", "save out/smol-ct format=compressed-tensors overwrite", "save out/smol dtype=bf16"])

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let loaded = try session.workspace.requireModel()
        let folder = Session.expandTilde(try invocation.text("folder"))
        var options = SaveOptions()
        options.format = SaveFormat(rawValue: try invocation.text("format"))!
        options.dtype = DType(rawValue: try invocation.text("dtype"))!
        options.overwrite = invocation.has("overwrite")
        options.requantize = invocation.has("requantize")
        options.maxShardBytes = Int(try invocation.number("shard_mb")) * 1_000_000
        options.provenance = try Self.provenance(session, loaded: loaded, format: options.format.rawValue)
        options.report = try HTMLReport.render(session, title: nil)
        let bar = ProgressBar(label: "save", unit: "tensors")
        let summary = try ModelWriter.save(
            loaded.model, checkpoint: loaded.checkpoint, tokenizer: loaded.tokenizer, to: folder, options: options,
            progress: { done, total in
                if session.isCancelled() { throw EngineError.cancelled }
                bar.update(done, of: total)
            })
        bar.finish()
        session.output("saved \(folder) (\(options.format.rawValue)): \(summary.files.joined(separator: ", ")), \(InspectFormatting.humanBytes(summary.tensorBytes)) of tensors\n")
        for note in summary.notes { session.output("  \(note)\n") }
        for line in summary.requantized { session.output("  requantized \(line)\n") }
        return .record(Record([
            ("path", .string(folder)), ("format", .string(options.format.rawValue)), ("files", .list(summary.files.map { .string($0) })),
            ("bytes", .number(Double(summary.tensorBytes))), ("size_mb", .number((Double(summary.tensorBytes) / 1e6 * 100).rounded() / 100)),
            ("requantized", .list(summary.requantized.map { .string($0) })),
        ]))
    }

    /// qs.json: what made the model.
    static func provenance(_ session: Session, loaded: LoadedModel, format: String) throws -> StrictJSON {
        let checkpoint = loaded.checkpoint
        var files: [String] = []
        if checkpoint.format == .gguf || FileAccess.kind(checkpoint.path) == .regular {
            files = [checkpoint.path]
        } else {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpoint.path)) ?? []
            files = names.filter { $0.hasSuffix(".safetensors") || $0 == "config.json" }.sorted().map { (checkpoint.path as NSString).appendingPathComponent($0) }
        }
        let hashes = try files.map { file in
            StrictJSON.object([
                StrictJSON.Member("file", .string((file as NSString).lastPathComponent)),
                StrictJSON.Member("sha256", .string(try Fetcher.sha256(ofFile: file))),
            ])
        }
        let history = session.workspace.history
        let commands = history.map { record in
            StrictJSON.object([
                StrictJSON.Member("command", .string(record.command)), StrictJSON.Member("source", .string(record.source)),
                StrictJSON.Member("file", .string(record.file)), StrictJSON.Member("line", .integer(record.line)),
            ])
        }
        let metrics = history.filter { ["eval", "bench", "report", "sensitivity", "autoquant", "prune", "quantize"].contains($0.command) }.map { record in
            StrictJSON.object([
                StrictJSON.Member("command", .string(record.source)), StrictJSON.Member("result", record.result.jsonValue),
            ])
        }
        var members: [StrictJSON.Member] = [
            StrictJSON.Member("qs_version", .string(QSVersion.number)),
            StrictJSON.Member("format", .string(format)),
            StrictJSON.Member("source", .object([
                StrictJSON.Member("model", .string(loaded.name)), StrictJSON.Member("path", .string(checkpoint.path)),
                StrictJSON.Member("format", .string(checkpoint.format.rawValue)), StrictJSON.Member("files", .array(hashes)),
            ])),
            StrictJSON.Member("commands", .array(commands)),
        ]
        if let calibration = session.workspace.calibration {
            members.append(StrictJSON.Member("calibration", .object([
                StrictJSON.Member("text", .string(calibration.text)), StrictJSON.Member("samples", .integer(calibration.samples)),
                StrictJSON.Member("length", .integer(calibration.length)), StrictJSON.Member("seed", .integer(Int(calibration.seed))),
            ])))
        }
        members.append(StrictJSON.Member("results", .array(metrics)))
        return .object(members)
    }
}

/// `export`: the model as a GGUF file llama.cpp runs.
enum ExportCommand: Command {
    static let spec = CommandSpec(
        "export", summary: "Export the model as held now to a GGUF file that llama.cpp runs.",
        discussion: """
            Writes GGUF v3 with the llama family's metadata (llama.cpp's llama architecture for llama and mistral, qwen2 for qwen2), the tokenizer (tokenizer.ggml.*: copied from a GGUF source, else written from tokenizer.json) and every tensor, q and k rows permuted for rotary embedding as convert_hf_to_gguf.py does. `type=` sets the matrices' type: f32, f16, bf16, or llama.cpp's q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q6_k, quantized by llama.cpp's reference rounding (q8_0 to q5_1 bit-identical to its quantizer); norms and biases stay f32; under a 4- or 5-bit type the vocabulary projection is q6_k (q8_0 where its rows are not whole 256-blocks), as llama.cpp keeps its output; rows that are not whole 256-blocks take llama.cpp's fallback (q4_k → q5_0, q6_k → q8_0). `type=auto` (the default) keeps what the session made: a layer quantized by qs whose grid a GGUF type holds is written in it without rounding again (int8 sym g32 as Q8_0, int4 sym g32 as Q4_0, int4 with offsets or exact zero points g32 as Q4_1, 5-bit as Q5_0/Q5_1), other quantized layers are quantized again to the nearest type (named in the output), unquantized ones f16.
            An explicit type that would round an already quantized layer again is refused, naming the layers and what would happen, unless `requantize` is given. The file is written under a temporary name and renamed when complete; an existing file needs `overwrite`, and the loaded model's own file is never written to.
            """,
        positionals: [ArgumentSpec("file", .path, help: "the output .gguf", required: true)],
        options: [ArgumentSpec("type", .word, help: "the matrices' type", default: .word("auto"), allowed: GGUFExportType.allCases.map(\.rawValue))],
        flags: [
            FlagSpec("overwrite", help: "replace an existing file"),
            FlagSpec("requantize", help: "allow rounding layers that are already quantized into the type"),
        ],
        resultFields: [
            ("path", "the file"), ("type", "the type asked for"), ("bytes", "bytes of the file"), ("size_mb", "the same in MB"),
            ("tensors", "tensors written"), ("exact", "layers whose qs quantization went in without rounding"),
            ("requantized", "layers quantized again, with how"), ("run", "a command that runs the file in llama.cpp"),
        ],
        examples: ["export out/smol.gguf", "export out/smol-q8.gguf type=q8_0", "export out/smol-q4.gguf type=q4_0 requantize overwrite"])

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let loaded = try session.workspace.requireModel()
        let path = Session.expandTilde(try invocation.text("file"))
        guard path.hasSuffix(".gguf") else { throw CommandError.invalidArgument("file", "a GGUF file's name ends in .gguf") }
        let type = GGUFExportType(rawValue: try invocation.text("type"))!
        switch FileAccess.kind(path) {
        case .missing: break
        case .regular:
            guard invocation.has("overwrite") else { throw CommandError.invalidArgument("file", "\(path) already exists; add overwrite to replace it, or choose another name") }
        case .directory, .other: throw CommandError.invalidArgument("file", "\(path) exists and is not a file")
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, FileAccess.kind(parent) == .missing {
            throw CommandError.invalidArgument("file", "the folder \(parent) does not exist")
        }
        let plan = try GGUFExporter.plan(loaded.model, type: type, requantize: invocation.has("requantize"))
        let bar = ProgressBar(label: "export", unit: "tensors")
        try GGUFExporter.write(
            loaded.model, checkpoint: loaded.checkpoint, tokenizer: loaded.tokenizer, name: loaded.name, plan: plan, to: path,
            requested: type, progress: { done, total in
                if session.isCancelled() { throw EngineError.cancelled }
                bar.update(done, of: total)
            })
        bar.finish()
        let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        let requantized = plan.compactMap { entry -> String? in
            guard case .requantized(let from) = entry.how else { return nil }
            return "\(loaded.model.names.canonical(forTensor: entry.name) ?? entry.name): \(from) → \(entry.type.rawValue)"
        }
        let exact = plan.filter { $0.how == .exact }.count
        var counts: [String: Int] = [:]
        for entry in plan { counts[entry.type.rawValue, default: 0] += 1 }
        let types = counts.sorted { $0.value > $1.value }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        session.output("exported \(path): \(plan.count) tensors (\(types)), \(InspectFormatting.humanBytes(bytes))\(exact > 0 ? "; \(exact) layers in their own quantization, not rounded again" : "")\n")
        if !requantized.isEmpty {
            session.output("  quantized again (\(requantized.count)): \(requantized.prefix(6).joined(separator: "; "))\(requantized.count > 6 ? "; ..." : "")\n")
        }
        let run = "llama-cli -m \(path) -p \"Once upon a time\" -n 32"
        session.output("  run it: \(run)\n")
        return .record(Record([
            ("path", .string(path)), ("type", .string(type.rawValue)), ("bytes", .number(Double(bytes))),
            ("size_mb", .number((Double(bytes) / 1e6 * 100).rounded() / 100)), ("tensors", .number(Double(plan.count))),
            ("exact", .number(Double(exact))), ("requantized", .list(requantized.map { .string($0) })), ("run", .string(run)),
        ]))
    }
}
