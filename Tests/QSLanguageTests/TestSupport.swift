@testable import QSLanguage

/// A command table shaped like the engine's, for binding tests.
enum TestCommands {
    static let table = CommandTable([
        CommandSpec(
            "load", summary: "Load a model.",
            positionals: [ArgumentSpec("model", .path, help: "registry name or path", required: true)]),
        CommandSpec(
            "quantize", summary: "Quantize weights.",
            positionals: [ArgumentSpec("pattern", .pattern, help: "layers", default: .word("*"))],
            options: [
                ArgumentSpec("bits", .integer, help: "bits per weight", default: .number(4), range: 2...8),
                ArgumentSpec("group", .integer, help: "group size", default: .number(32), allowed: ["32", "64", "128"]),
                ArgumentSpec("method", .word, help: "algorithm", default: .word("rtn"), allowed: ["rtn", "gptq"]),
            ],
            flags: [FlagSpec("sym", help: "symmetric", group: "zero"), FlagSpec("asym", help: "asymmetric", group: "zero")],
            resultFields: [("layers", "layers quantized")]),
        CommandSpec(
            "prune", summary: "Prune weights.",
            positionals: [
                ArgumentSpec("scope", .word, help: "where", required: true, allowed: ["global", "layer"]),
                ArgumentSpec("amount", .number, help: "fraction", required: true, range: 0...1),
            ]),
        CommandSpec(
            "eval", summary: "Measure the model.",
            positionals: [
                ArgumentSpec("metric", .word, help: "what", default: .word("ppl"), allowed: ["ppl", "kl", "size"]),
                ArgumentSpec("text", .string, help: "text", default: .word("shakespeare")),
            ],
            options: [ArgumentSpec("ctx", .integer, help: "context", default: .number(512), range: 8...8192)]),
        CommandSpec(
            "save", summary: "Save the model.",
            positionals: [ArgumentSpec("path", .path, help: "where", required: true)],
            options: [ArgumentSpec("format", .word, help: "format", default: .word("hf"), allowed: ["hf", "gptq", "gguf"])]),
        CommandSpec(
            "calibrate", summary: "Collect calibration data.",
            positionals: [ArgumentSpec("text", .string, help: "text", required: true)],
            options: [ArgumentSpec("samples", .integer, help: "samples", default: .number(128), range: 1...4096), ArgumentSpec("seqlen", .integer, help: "length", default: .number(512))]),
        CommandSpec("mix", summary: "Sparsity pattern.", options: [ArgumentSpec("pattern", .ratio, help: "n:m"), ArgumentSpec("widths", .list(.integer), help: "bit widths")]),
    ])

    static func render(_ diagnostics: [Diagnostic]) -> String {
        DiagnosticRenderer().render(diagnostics)
    }
}

/// An in-memory set of files for import tests.
struct MemoryFiles {
    var files: [String: String]

    func resolve(_ target: ImportTarget, from file: SourceFile) -> Result<SourceFile, Diagnostic> {
        let name: String
        switch target {
        case .file(let path, _): name = path
        case .library(let library): name = "stdlib/\(library.text).qs"
        }
        guard let text = files[name] else {
            return .failure(.importNotFound(name, searched: [name], file: file, range: target.range))
        }
        return .success(SourceFile(name: name, text: text))
    }
}
