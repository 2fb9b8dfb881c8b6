import Foundation
import QSLanguage

extension Session {
    /// Where `use` finds a file: a quoted path is relative to the importing file's folder (`~`
    /// is the home folder), a bare name is `NAME.qs` in the library folder.
    func resolveImport(_ target: ImportTarget, from importer: SourceFile) -> Result<SourceFile, Diagnostic> {
        var candidates: [String] = []
        switch target {
        case .file(let path, _):
            var expanded = path
            if expanded.hasPrefix("~/") { expanded = NSHomeDirectory() + expanded.dropFirst() }
            if !expanded.hasPrefix("/") {
                let folder = importer.name.hasPrefix("<") ? FileManager.default.currentDirectoryPath : (importer.name as NSString).deletingLastPathComponent
                expanded = folder.isEmpty ? expanded : folder + "/" + expanded
            }
            candidates = [canonicalPath(expanded)]
            if !expanded.hasSuffix(".qs") { candidates.append(canonicalPath(expanded + ".qs")) }
        case .library(let name):
            guard let libraryDirectory else {
                return .failure(Diagnostic.importNotFound(name.text, searched: ["the library folder (none is set)"], file: importer, range: target.range))
            }
            candidates = [canonicalPath(libraryDirectory + "/" + name.text + ".qs")]
        }
        var lastError: Error?
        for candidate in candidates {
            do {
                return .success(SourceFile(name: candidate, bytes: try readFile(candidate)))
            } catch {
                lastError = error
            }
        }
        let name: String
        switch target {
        case .file(let path, _): name = path
        case .library(let library): name = library.text
        }
        if let lastError, !(lastError is CommandError) {
            return .failure(Diagnostic.importFailed(name, reason: "\(lastError)", file: importer, range: target.range))
        }
        return .failure(Diagnostic.importNotFound(name, searched: candidates, file: importer, range: target.range))
    }

    /// A path with `.` and `..` removed, so one file has one name.
    func canonicalPath(_ path: String) -> String {
        guard !path.hasPrefix("<") else { return path }
        return URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// Runs `use`: imports a file once, reporting cycles. The file's top level runs in its own
    /// scope; the recipes it defines become commands.
    func importFile(_ target: ImportTarget, from importer: SourceFile) throws {
        let imported: SourceFile
        switch resolveImport(target, from: importer) {
        case .success(let file): imported = file
        case .failure(let diagnostic): throw diagnostic
        }
        if let position = importStack.firstIndex(of: imported.name) {
            let chain = Array(importStack[position...]) + [imported.name]
            throw Diagnostic.importCycle(chain, file: importer, range: target.range)
        }
        guard !importedFiles.contains(imported.name) else { return }
        guard importStack.count < Checker.maxImportDepth else {
            throw Diagnostic.importTooDeep(limit: Checker.maxImportDepth, file: importer, range: target.range)
        }
        let (unit, diagnostics) = Parser.parse(imported)
        guard diagnostics.isEmpty else { throw DiagnosticList(diagnostics) }
        importStack.append(imported.name)
        defer { importStack.removeLast() }
        var evaluator = Evaluator(session: self, file: imported, depth: 0)
        let scope = Environment(parent: globals)
        try evaluator.defineRecipes(unit.statements, in: scope)
        _ = try evaluator.execute(unit.statements, in: scope)
        importedFiles.insert(imported.name)
    }
}
