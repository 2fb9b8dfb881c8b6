import Foundation
import QSEngine
import QSLanguage

/// The state a script or the REPL works on: the loaded model, calibration data, snapshots and
/// settings. One session lives as long as a `qs run` or a REPL.
package final class Session {
    /// Every built-in command, listed once.
    package static let builtins: [any Command.Type] = [
        HelpCommand.self, SetCommand.self, LoadCommand.self, FetchCommand.self, InfoCommand.self, LayersCommand.self,
        SnapshotCommand.self, RestoreCommand.self, ResetCommand.self, EvalCommand.self, GenerateCommand.self,
        BenchCommand.self, CalibrateCommand.self, QuantizeCommand.self, ReportCommand.self,
        SensitivityCommand.self, AutoquantCommand.self, PruneCommand.self, SaveCommand.self, ExportCommand.self,
        FinetuneCommand.self, TuneCommand.self,
    ]
    /// The settings every session has.
    static let standardSettings = [
        ArgumentSpec("threads", .integer, help: "worker threads for kernels (0: QS_THREADS, else all cores)", default: .number(0), range: 0...1024),
        ArgumentSpec("seed", .integer, help: "seed for sampling calibration and evaluation text", default: .number(0), range: 0...4_294_967_295),
        ArgumentSpec(
            "kernels", .word, help: "activations of the quantized decode kernels: exact (fp32), or int8 (quantized per block, faster)",
            default: .word("exact"), allowed: BlockKernels.Activations.allCases.map(\.rawValue)),
        ArgumentSpec(
            "train_memory", .word, help: "what training keeps for the backward: keep (every block's activations) or recompute (each block's input; less memory)",
            default: .word("keep"), allowed: ["keep", "recompute"]),
        ArgumentSpec("eval_text", .string, help: "the text 'eval' uses when none is named", default: .word("shakespeare")),
    ]

    /// The commands, with their handlers.
    package private(set) var commands = CommandRegistry()
    /// The commands and the recipes defined so far, as one table (for binding, completion,
    /// help): built when the session starts and changed only when a command, setting or
    /// recipe is added.
    package private(set) var table = CommandTable()
    /// Settings changed with `set name=value`.
    package private(set) var settings = Settings()
    /// Where everything the session prints goes (tests capture it; the CLI writes to stdout).
    package var output: (String) -> Void
    /// Where warnings and notes of running commands go, as diagnostics (the CLI renders them to
    /// standard error; tests capture them).
    package var report: (Diagnostic) -> Void = { _ in }
    /// Called after every built-in command with its name and result (`qs run --json`).
    package var onCommandResult: ((String, Value) -> Void)?
    /// Whether what the session prints may carry ANSI colour (its output is a terminal and
    /// NO_COLOR is unset); the bars beside tables are drawn either way.
    package var colour = false
    /// Polled by long engine work between steps; the REPL sets it to its Ctrl-C flag.
    package var isCancelled: () -> Bool = { false }
    /// The loaded model, its snapshots and cached baselines.
    package let workspace = Workspace()
    /// The folder `use NAME` looks in.
    package var libraryDirectory: String?
    /// Reads a file for `use`; replaceable for tests.
    package var readFile: (String) throws -> [UInt8] = { path in
        // A missing file is "not found" (a CommandError), so `use` lists where it looked.
        if FileAccess.kind(path) == .missing { throw CommandError.failed("no such file") }
        return try Session.readScript(path)
    }

    /// The largest script qs reads (16 MB): a program text is far smaller; anything larger is
    /// not a script.
    package static let maxScriptBytes = 16 << 20

    /// The bytes of a script: a regular file or what a shell hands over (a FIFO, /dev/stdin),
    /// never a folder, at most `maxScriptBytes`, and text: a NUL byte says it is binary (a
    /// model given as a script), which would otherwise give a diagnostic per byte.
    package static func readScript(_ path: String) throws(EngineError) -> [UInt8] {
        let bytes: [UInt8]
        do {
            bytes = [UInt8](try FileAccess.scriptContents(path, limit: maxScriptBytes))
        } catch let error as EngineError {
            throw error
        } catch {
            throw EngineError(path: path, "\(error)")
        }
        if let offset = bytes.firstIndex(of: 0) {
            throw EngineError(path: path, "is not a text file (a NUL byte at offset \(offset)); a script is UTF-8 text")
        }
        return bytes
    }
    /// The top-level scope: variables survive from one REPL line to the next.
    package let globals = Environment()
    /// Recipes defined so far, by name.
    private(set) var recipes: [String: RecipeDefinition] = [:]
    /// Files already imported (by resolved path), so each is imported once.
    var importedFiles: Set<String> = []
    /// Files being imported right now, outermost first, to report cycles.
    var importStack: [String] = []

    /// When set, a run stops with an error after this many statements (the fuzzer's bound on
    /// scripts that would loop for hours; a person stops those with Ctrl-C).
    package var stepLimit: Int?
    /// Statements run since the last `run` began.
    var steps = 0

    /// How deeply recipe calls may nest before the run stops with an error.
    package static let maxRecipeDepth = 64

    package init(output: @escaping (String) -> Void, libraryDirectory: String? = nil) {
        self.output = output
        self.libraryDirectory = libraryDirectory
        for spec in Self.standardSettings { settings.register(spec) }
        for command in Self.builtins { commands.register(command.spec, handler: command.run) }
        commands.register(SetCommand.spec(settings: settings.specs), handler: SetCommand.run)
        rebuildTable()
    }

    /// Adds a command and its handler (tests and plug-ins; the built-ins come from `builtins`).
    package func register(_ spec: CommandSpec, handler: @escaping CommandHandler) {
        commands.register(spec, handler: handler)
        rebuildTable()
    }

    /// Adds a setting that `set` accepts (and refreshes the `set` command's spec).
    package func registerSetting(_ spec: ArgumentSpec) {
        settings.register(spec)
        commands.register(SetCommand.spec(settings: settings.specs), handler: SetCommand.run)
        rebuildTable()
    }

    /// Defines (or redefines) a recipe as a command.
    func defineRecipe(_ recipe: RecipeDefinition) {
        recipes[recipe.declaration.name.text] = recipe
        rebuildTable()
    }

    private func rebuildTable() {
        var table = commands.table
        for recipe in recipes.values.sorted(by: { $0.declaration.name.text < $1.declaration.name.text }) {
            table.add(recipe.spec)
        }
        self.table = table
    }

    /// The current value of a setting.
    package func setting(_ name: String) -> Value? { settings[name] }

    /// Changes a setting (checked against its spec).
    package func setSetting(_ name: String, _ value: Value) throws(CommandError) {
        try settings.set(name, value)
    }

    /// Runs a command that changes the loaded model's weights as a transaction: it completes,
    /// or (on an error, Ctrl-C, or a weight that became NaN or infinite) leaves every weight as
    /// it was before. Every weight-changing command goes through here.
    package func changingWeights<R>(_ body: (LoadedModel) throws -> R) throws -> R {
        let loaded = try workspace.requireModel()
        return try loaded.weights.transaction { try body(loaded) }
    }

    /// The canonical layer names of the loaded model (for completion).
    package var layerNames: [String] { workspace.loaded?.model.names.entries.map(\.canonical) ?? [] }

    /// The models and texts of the registry (for completion).
    package var registryNames: [String] { Registry.names }

    /// Reports a warning about the command being run, at its place in the source.
    package func warn(_ invocation: CommandInvocation, _ message: String) {
        report(.commandWarning(invocation.spec.name, message, file: invocation.file, range: invocation.range))
    }

    /// Reports a note about the command being run, at its place in the source.
    package func note(_ invocation: CommandInvocation, _ message: String) {
        report(.commandNote(invocation.spec.name, message, file: invocation.file, range: invocation.range))
    }

    /// Runs a source: parses it (any syntax error stops it before anything runs), then executes
    /// the statements in the global scope and returns the value of the last one. Stops at the
    /// first runtime error. With `checkFirst`, every binding error in the file (and what it
    /// imports) also stops it before anything runs, as `qs check` would report them.
    package func run(_ file: SourceFile, checkFirst: Bool = false) throws(DiagnosticList) -> Value {
        let (unit, diagnostics) = Parser.parse(file)
        guard diagnostics.isEmpty else { throw DiagnosticList(diagnostics) }
        if checkFirst {
            let problems = check(file)
            guard problems.isEmpty else { throw DiagnosticList(problems) }
        }
        importStack = [canonicalPath(file.name)]
        steps = 0
        defer { importStack = [] }
        do {
            var evaluator = Evaluator(session: self, file: file, depth: 0)
            try evaluator.defineRecipes(unit.statements, in: globals)
            return try evaluator.execute(unit.statements, in: globals)
        } catch let list as DiagnosticList {
            throw list
        } catch let diagnostic as Diagnostic {
            throw DiagnosticList([diagnostic])
        } catch {
            throw DiagnosticList([.commandFailed("error", reason: "\(error)", file: file, range: .at(0))])
        }
    }

    /// Runs text, named `name` in diagnostics.
    package func run(_ text: String, name: String = "<input>") throws(DiagnosticList) -> Value {
        try run(SourceFile(name: name, text: text))
    }

    /// Reads and runs a .qs file.
    package func runFile(at path: String, checkFirst: Bool = false) throws(DiagnosticList) -> Value {
        let bytes: [UInt8]
        do {
            bytes = try readFile(path)
        } catch {
            let file = SourceFile(name: path, text: "")
            throw DiagnosticList([.importFailed(path, reason: "\(error)", file: file, range: .at(0))])
        }
        return try run(SourceFile(name: canonicalPath(path), bytes: bytes), checkFirst: checkFirst)
    }

    /// `qs check`: every syntax and binding error in the file and what it imports, without
    /// running anything.
    package func check(_ file: SourceFile) -> [Diagnostic] {
        var checker = Checker(table: table) { [self] target, importer in resolveImport(target, from: importer) }
        checker.knownVariables = globals.visibleNames
        return checker.check(file)
    }
}

/// A recipe the session knows: its declaration, the file it is in and the scope it closes over.
struct RecipeDefinition {
    var declaration: RecipeDeclaration
    var file: SourceFile
    var scope: Environment
    var spec: CommandSpec
}

/// The settings `set` changes, with their specs (types, ranges, defaults).
package struct Settings {
    package private(set) var specs: [ArgumentSpec] = []
    private var values: [String: Value] = [:]

    package subscript(name: String) -> Value? { values[name] }

    mutating func register(_ spec: ArgumentSpec) {
        specs.removeAll { $0.name == spec.name }
        specs.append(spec)
        values[spec.name] = spec.defaultValue.map(Value.init) ?? values[spec.name]
    }

    mutating func set(_ name: String, _ value: Value) throws(CommandError) {
        guard let spec = specs.first(where: { $0.name == name }) else {
            throw .invalidArgument(name, "unknown setting")
        }
        if spec.check(value.shape) != nil {
            throw .invalidArgument(name, "expected \(spec.type)")
        }
        values[name] = value
    }
}
