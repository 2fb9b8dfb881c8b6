import Foundation
import QSEngine

/// The bodies of the command line's own subcommands (`qs fetch`, `qs inspect`, `qs convert`),
/// in the library so that tests drive them; the executable only parses arguments and prints.
/// Each returns the text to print on standard output and throws an `EngineError` naming the
/// file, tensor or key when it cannot do its work.
package enum CommandLineTools {
    /// Progress messages for a terminal (downloads, conversions); nothing when standard error
    /// is not one.
    package static func terminalMessage(_ message: String) {
        if isatty(2) != 0 { FileHandle.standardError.write(Data("\(message)\n".utf8)) }
    }

    /// `qs fetch [NAME...]`: the registry and what is cached, or the location of each name fetched.
    package static func fetch(_ names: [String], fetcher: Fetcher = Fetcher()) throws -> String {
        if names.isEmpty { return RegistryFormatting.table(fetcher: fetcher) }
        var lines: [String] = []
        for name in names {
            guard let entry = Registry.entry(name) else {
                throw EngineError(subject: name, "is not in the registry; known: \(Registry.entries.map(\.name).joined(separator: ", "))")
            }
            lines.append("\(entry.name): \(try fetcher.fetch(entry, progress: terminalMessage))")
        }
        return lines.joined(separator: "\n")
    }

    /// `qs inspect MODEL [--tensors]`: format, configuration, parameters and bytes by dtype, after
    /// the same checks `load` makes of the configuration against the tensors.
    package static func inspect(_ model: String, tensors: Bool, fetcher: Fetcher = Fetcher()) throws -> String {
        let checkpoint = try Checkpoint.open(fetcher.resolve(model))
        if checkpoint.config != nil { _ = try ModelLoader.names(for: checkpoint) }
        return InspectFormatting.summary(checkpoint.summary, tensors: tensors ? checkpoint.tensors : nil)
    }

    /// `qs convert MODEL OUTPUT [--dtype] [--overwrite]`: a Hugging Face folder of the model's
    /// weights. An existing OUTPUT needs `overwrite`, and keeps the files qs does not write.
    package static func convert(
        _ model: String, to output: String, dtype: String, overwrite: Bool = false, fetcher: Fetcher = Fetcher(),
        progress: ((Int, Int) -> Void)? = nil
    ) throws -> String {
        guard let type = DType(rawValue: dtype), Converter.outputDTypes.contains(type) else {
            throw EngineError(subject: dtype, "is not an output dtype; expected f32, f16 or bf16")
        }
        let checkpoint = try Checkpoint.open(fetcher.resolve(model))
        try Converter.convert(checkpoint, to: output, dtype: type, overwrite: overwrite, progress: progress)
        return "wrote \(output)"
    }
}
