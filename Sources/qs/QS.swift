import ArgumentParser
import Foundation
import QSEngine
import QSInterpreter
import QSLanguage
import QSREPL

@main
struct QS: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qs",
        abstract: "A model-compression workbench for Hugging Face transformer models.",
        discussion: """
            Without a subcommand: -e runs statements; on a terminal, the REPL starts; otherwise a \
            script is read from standard input. Exit status: 0 success, 1 a script error or failed \
            assert, 2 a usage error.
            """,
        subcommands: [Run.self, Check.self, Fetch.self, Inspect.self, Convert.self, Help.self]
    )

    @Flag(name: .long, help: "Print the version and the matrix kernel in use.")
    var version = false

    @Option(name: .short, help: "Run these statements (repeatable; joined by newlines).")
    var e: [String] = []

    /// Runs the command line, with usage errors exiting 2 (not ArgumentParser's 64).
    static func main() {
        // Keep large buffers (logits are 100 MB a window for a 49k vocabulary) in the heap
        // between windows instead of mapping and zero-filling fresh pages for each.
        Memory.keepLargeBuffers()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                // ArgumentParser says "Error: ..."; qs's own errors read "qs: error: ...".
                var message = fullMessage(for: error)
                if message.hasPrefix("Error: ") { message = "qs: error: " + message.dropFirst("Error: ".count) }
                FileHandle.standardError.write(Data((message + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }

    func run() throws {
        if version {
            print(versionText())
            return
        }
        let runner = ScriptRunner()
        if !e.isEmpty {
            throw ExitCode(runner.run(SourceFile(name: "<command line>", text: e.joined(separator: "\n"))))
        }
        if isatty(0) != 0 {
            throw ExitCode(REPLDriver.run(runner: runner))
        }
        let input = FileHandle.standardInput.readDataToEndOfFile()
        throw ExitCode(runner.run(SourceFile(name: "<stdin>", bytes: [UInt8](input))))
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a .qs script; 'assert' failures and errors exit 1.")

    @ArgumentParser.Argument(help: "The script.")
    var file: String

    @Option(name: .customLong("set"), help: "Define name=value before the script runs (a setting, or a variable).")
    var assignments: [String] = []

    @Flag(help: "Print each command's result record as one JSON line.")
    var json = false

    func run() throws {
        let runner = ScriptRunner(json: json)
        if let status = try runner.define(assignments) { throw ExitCode(status) }
        let status = runner.runFile(file)
        if status != 0 { throw ExitCode(status) }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Report every syntax and binding error in .qs files, without running them.")

    @ArgumentParser.Argument(help: "The scripts.")
    var files: [String]

    func run() throws {
        let status = ScriptRunner().check(files)
        if status != 0 { throw ExitCode(status) }
        print("\(files.count) file\(files.count == 1 ? "" : "s") checked: no errors")
    }
}

struct Help: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Explain the .qs commands and qs's own subcommands, or one of them.")

    @ArgumentParser.Argument(help: "A .qs command or a qs subcommand (run, check, fetch, inspect, convert).")
    var command: String?

    @Flag(help: "Print the reference of every command as Markdown (the end of docs/language.md).")
    var markdown = false

    /// The subcommands of the executable that are not .qs commands.
    static let subcommands: [String: ParsableCommand.Type] = [
        "run": Run.self, "check": Check.self, "inspect": Inspect.self, "convert": Convert.self, "help": Help.self,
    ]

    func run() throws {
        let runner = ScriptRunner()
        if markdown {
            print(runner.session.table.markdownReference, terminator: "")
            return
        }
        if let command, let subcommand = Self.subcommands[command] {
            print(QS.helpMessage(for: subcommand), terminator: "")
            return
        }
        // The name is looked up in the command table; it is never read as source.
        do {
            print(try runner.session.helpText(command), terminator: "")
            if command == "fetch" { print("\nOn the command line: qs fetch [NAME ...] (no name lists the registry).") }
        } catch {
            let reason: String
            switch error {
            case .invalidArgument(_, let why), .failed(let why): reason = why
            }
            FileHandle.standardError.write(Data("qs: error: help: '\(command ?? "")': \(reason)\n".utf8))
            throw ExitCode(2)
        }
    }
}

/// The version line and the BLAS kernel OpenBLAS runs with on this CPU.
func versionText() -> String {
    var text = "qs \(QSVersion.number)"
    do {
        try BLAS.load()
        text += "\nBLAS: OpenBLAS, kernel \(BLAS.coreName) (\(BLAS.chosenBy)), \(BLAS.threads) threads"
    } catch {
        text += "\nBLAS: unavailable: \(error)"
    }
    return text
}

/// Runs `body`, printing an engine error as `qs: error: ...` and exiting with status 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as EngineError {
        FileHandle.standardError.write(Data("qs: error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

struct Fetch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download a registered model or text into $QS_HOME, or list the registry.")

    @ArgumentParser.Argument(help: "Registry names to fetch; none lists the registry and what is present.")
    var names: [String] = []

    func run() throws {
        try reportingErrors { print(try CommandLineTools.fetch(names)) }
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model's format, architecture, configuration, parameters and bytes by dtype.")

    @ArgumentParser.Argument(help: "A Hugging Face folder, a .safetensors or .gguf file, or a registry name.")
    var model: String

    @Flag(help: "Also list every tensor: name, dtype, shape, bytes.")
    var tensors = false

    func run() throws {
        try reportingErrors { print(try CommandLineTools.inspect(model, tensors: tensors)) }
    }
}

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model as a Hugging Face folder (config.json, model.safetensors, tokenizer).")

    @ArgumentParser.Argument(help: "A Hugging Face folder, a .safetensors or .gguf file, or a registry name.")
    var model: String

    @ArgumentParser.Argument(help: "The folder to write.")
    var output: String

    @Option(help: "The dtype of the weights: f32, f16 or bf16.")
    var dtype: String = "f32"

    @Flag(help: "Replace the model files of an existing output folder (its other files are kept).")
    var overwrite = false

    func run() throws {
        try reportingErrors {
            let bar = ProgressBar(label: "convert", unit: "tensors")
            let message = try CommandLineTools.convert(model, to: output, dtype: dtype, overwrite: overwrite) { bar.update($0, of: $1) }
            bar.finish()
            print(message)
        }
    }
}
