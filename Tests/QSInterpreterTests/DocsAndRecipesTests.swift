import Foundation
import Testing
@testable import QSInterpreter
@testable import QSLanguage

/// The command table is the single source of docs/language.md, and every stdlib recipe passes
/// `qs check`.
@Suite struct DocsAndRecipesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test func languageReferenceMatchesTheCommandTable() throws {
        let session = Session(output: { _ in })
        let docs = try String(contentsOf: Self.root.appendingPathComponent("docs/language.md"), encoding: .utf8)
        let reference = session.table.markdownReference
        #expect(docs.hasSuffix(reference), "docs/language.md is out of date: run scripts/gen-docs")
        for name in session.table.names {
            #expect(docs.contains("### `\(name)`"), "\(name) is not documented")
        }
    }

    @Test func everyStdlibRecipePassesCheck() throws {
        let folder = Self.root.appendingPathComponent("stdlib")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".qs") }
        #expect(files.count >= 2)
        for name in files {
            let session = Session(output: { _ in }, libraryDirectory: folder.path)
            let text = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            #expect(text.hasPrefix("# "), "\(name) needs a header comment")
            let problems = session.check(SourceFile(name: name, text: text))
            #expect(problems.isEmpty, "\(name): \(problems.map(\.message))")
            // Importing it by name defines its recipes.
            let importer = Session(output: { _ in }, libraryDirectory: folder.path)
            _ = try importer.run("use \(name.dropLast(3))", name: "<test>")
            #expect(!importer.table.names.filter { !session.commands.table.names.contains($0) }.isEmpty)
        }
    }

    @Test func examplesPassCheck() throws {
        let folder = Self.root.appendingPathComponent("examples")
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) where name.hasSuffix(".qs") {
            let session = Session(output: { _ in }, libraryDirectory: Self.root.appendingPathComponent("stdlib").path)
            let text = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            #expect(session.check(SourceFile(name: name, text: text)).isEmpty, "\(name)")
        }
    }
}

/// The qs executable (QS_BIN, set by scripts/test): exit statuses and where output goes.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["QS_BIN"] != nil))
struct CommandLineTests {
    static func qs(_ arguments: [String], stdin: String? = nil) throws -> (status: Int32, out: String, err: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ProcessInfo.processInfo.environment["QS_BIN"]!)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["NO_COLOR"] = "1"
        process.environment = environment
        let out = Pipe()
        let err = Pipe()
        let input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }

    static func script(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("qs-\(UUID().uuidString).qs").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func failedAssertExitsOneWithMessageAndPlace() throws {
        let path = try Self.script("let x = 3\nassert x > 5, \"x is only {x}\"\nprint \"not reached\"\n")
        let result = try Self.qs(["run", path])
        #expect(result.status == 1)
        #expect(result.err.contains("\(path):2:"))
        #expect(result.err.contains("x is only 3"))
        #expect(!result.out.contains("not reached"))
    }

    @Test func checkReportsEveryErrorWithoutRunning() throws {
        let path = try Self.script("print \"ran\"\nquantize_nothing 3\nlet y = \nhelp bogus_option=1\n")
        let result = try Self.qs(["check", path])
        #expect(result.status == 1)
        #expect(!result.out.contains("ran"))
        #expect(result.err.components(separatedBy: ": error: ").count - 1 >= 3)
    }

    @Test func usageErrorExitsTwo() throws {
        #expect(try Self.qs(["run"]).status == 2)
        #expect(try Self.qs(["--no-such-flag"]).status == 2)
        #expect(try Self.qs(["run", "/nonexistent/x.qs"]).status == 2)
    }

    @Test func setDefinesVariablesAndJSONPrintsRecords() throws {
        let path = try Self.script("print \"n={n} name={name}\"\nset seed=3\n")
        let result = try Self.qs(["run", path, "--set", "n=4", "--set", "name=abc"])
        #expect(result.status == 0)
        #expect(result.out.contains("n=4 name=abc"))
        let json = try Self.qs(["run", try Self.script("set\n"), "--json"])
        #expect(json.status == 0)
        #expect(json.out.hasPrefix("{\"command\":\"set\",\"result\":{"))
    }

    /// `qs help X` looks X up: text that would be a statement is not run, and the command
    /// line's own subcommands have help too.
    @Test func helpLooksUpItsArgumentAndCoversTheSubcommands() throws {
        let injected = try Self.qs(["help", "; fetch smollm2-135m"])
        #expect(injected.status == 2)
        #expect(injected.err.contains("no such command"))
        #expect(!injected.out.contains("smollm2-135m:"))
        for subcommand in ["convert", "inspect", "run", "check"] {
            let help = try Self.qs(["help", subcommand])
            #expect(help.status == 0)
            #expect(help.out.contains("USAGE: qs \(subcommand)"), "\(subcommand): \(help.out)")
        }
        #expect(try Self.qs(["help", "quantize_nothing"]).status == 2)
        #expect(try Self.qs(["help", "eval"]).out.hasPrefix("usage: eval"))
    }

    @Test func scriptFromStandardInput() throws {
        let result = try Self.qs([], stdin: "let a = [1, 2, 3]\nprint \"sum {a[0] + a[1] + a[2]}\"\n")
        #expect(result.status == 0)
        #expect(result.out.contains("sum 6"))
    }
}

/// The real SmolLM2 through the command line end to end (QS_BIN and QS_SMOLLM2_GGUF, set by
/// scripts/test): load, eval, generate and bench records as JSON lines.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["QS_BIN"] != nil
    && ProcessInfo.processInfo.environment["QS_SMOLLM2_GGUF"] != nil))
struct RealModelCommandLineTests {
    @Test func loadEvalGenerateBench() throws {
        let path = try CommandLineTests.script("""
            load smollm2-135m
            eval ppl shakespeare tokens=1024
            generate "The capital of France is" tokens=8
            bench prompt=64 gen=8
            """)
        let result = try CommandLineTests.qs(["run", path, "--json"])
        #expect(result.status == 0, "\(result.err)")
        var records: [String: [String: Any]] = [:]
        for line in result.out.split(separator: "\n") {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            records[object["command"] as! String] = object["result"] as? [String: Any]
        }
        let load = try #require(records["load"])
        #expect(load["architecture"] as? String == "llama")
        #expect(load["params"] as? Int == 134_515_008)
        let eval = try #require(records["eval"])
        let ppl = try #require(eval["ppl"] as? Double)
        #expect(ppl > 10 && ppl < 60)
        #expect(eval["tokens"] as? Int == 1024 && eval["ctx"] as? Int == 512 && eval["bos"] as? Bool == false)
        #expect((eval["bits_per_weight"] as? Double).map { $0 > 5 && $0 < 6 } == true)
        let generated = try #require(records["generate"])
        #expect((generated["text"] as? String)?.contains("Paris") == true)
        let bench = try #require(records["bench"])
        #expect((bench["decode_tok_s"] as? Double).map { $0 > 0 } == true)
        #expect((bench["peak_mb"] as? Double).map { $0 > 100 } == true)
        // What the commands print goes to standard error in JSON mode.
        #expect(result.err.contains("eval ppl  shakespeare: 1024 tokens"))
    }
}
