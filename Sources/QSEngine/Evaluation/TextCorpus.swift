import Foundation

/// Text for evaluation: a file, or a registry text read in a fixed, documented order.
///
/// A registry collection (such as `shakespeare`) is the files matching its glob in its folder,
/// in byte order of their names, each decoded as UTF-8 (invalid bytes become U+FFFD and a
/// warning says so), joined with a blank line ("\n\n"). Reading stops once `minimumCharacters`
/// are there, so evaluating the first N tokens never reads the whole collection.
package struct TextCorpus: Sendable {
    /// The name given (registry name or path).
    package var name: String
    package var text: String
    /// Files that were not valid UTF-8.
    package var replacedFiles: [String]

    /// Reads a text by registry name or path; `minimumCharacters` bounds how much of a
    /// collection is read (nil: all of it).
    package static func load(_ nameOrPath: String, fetcher: Fetcher, minimumCharacters: Int? = nil) throws -> TextCorpus {
        if let entry = Registry.entry(nameOrPath) {
            guard entry.kind == .text else {
                throw EngineError(subject: nameOrPath, "is a model, not a text; texts: \(Registry.entries.filter { $0.kind == .text }.map(\.name).joined(separator: ", "))")
            }
            let folder = try fetcher.fetch(entry, progress: nil)
            return try collection(name: nameOrPath, folder: folder, glob: entry.glob ?? "*.txt", minimumCharacters: minimumCharacters)
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: nameOrPath, isDirectory: &isDirectory) else {
            throw EngineError(path: nameOrPath, "no such text file, and not a registry text (texts: \(Registry.entries.filter { $0.kind == .text }.map(\.name).joined(separator: ", ")))")
        }
        if isDirectory.boolValue {
            return try collection(name: nameOrPath, folder: nameOrPath, glob: "*.txt", minimumCharacters: minimumCharacters)
        }
        let (text, replaced) = try decode(nameOrPath)
        return try checked(TextCorpus(name: nameOrPath, text: text, replacedFiles: replaced ? [nameOrPath] : []))
    }

    /// The files of a collection folder, in the documented order.
    package static func files(in folder: String, glob: String) throws -> [String] {
        let names = try FileManager.default.contentsOfDirectory(atPath: folder)
            .filter { matches($0, glob: glob) }
            .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        return names.map { (folder as NSString).appendingPathComponent($0) }
    }

    package static func collection(name: String, folder: String, glob: String, minimumCharacters: Int?) throws -> TextCorpus {
        var parts: [String] = []
        var replaced: [String] = []
        var length = 0
        for path in try files(in: folder, glob: glob) {
            let (text, wasReplaced) = try decode(path)
            if wasReplaced { replaced.append(path) }
            parts.append(text)
            length += text.utf8.count + 2
            if let minimumCharacters, length >= minimumCharacters { break }
        }
        guard !parts.isEmpty else { throw EngineError(path: folder, "holds no files matching \(glob)") }
        return try checked(TextCorpus(name: name, text: parts.joined(separator: "\n\n"), replacedFiles: replaced))
    }

    static func checked(_ corpus: TextCorpus) throws -> TextCorpus {
        guard !corpus.text.isEmpty else { throw EngineError(path: corpus.name, "is empty: there is nothing to evaluate") }
        return corpus
    }

    /// The file's text, and whether invalid UTF-8 had to be replaced.
    package static func decode(_ path: String) throws -> (String, Bool) {
        let data = try FileAccess.contents(path, expected: "a text file")
        if let text = String(data: data, encoding: .utf8) { return (text, false) }
        return (String(decoding: data, as: UTF8.self), true)
    }

    /// Shell-style matching of `*` (any run) and `?` (one character) against a file name.
    static func matches(_ name: String, glob: String) -> Bool {
        let n = Array(name.unicodeScalars)
        let g = Array(glob.unicodeScalars)
        var memo: [Int: Bool] = [:]
        func match(_ i: Int, _ j: Int) -> Bool {
            let key = i * (g.count + 1) + j
            if let known = memo[key] { return known }
            let result: Bool
            if j == g.count {
                result = i == n.count
            } else if g[j] == "*" {
                result = match(i, j + 1) || (i < n.count && match(i + 1, j))
            } else {
                result = i < n.count && (g[j] == "?" || g[j] == n[i]) && match(i + 1, j + 1)
            }
            memo[key] = result
            return result
        }
        return match(0, 0)
    }
}
