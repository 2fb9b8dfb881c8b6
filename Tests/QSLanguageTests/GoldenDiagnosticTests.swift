import Testing
@testable import QSLanguage

/// Compares the whole rendered text of `qs check` for each mistake in the catalogue.
struct GoldenDiagnosticTests {
    static func render(_ entry: DiagnosticCatalogue.Case) -> String {
        let files = MemoryFiles(files: entry.files)
        let checker = Checker(table: TestCommands.table) { target, importer in files.resolve(target, from: importer) }
        return DiagnosticRenderer().render(checker.check(SourceFile(name: "main.qs", text: entry.files["main.qs"] ?? "")))
    }

    @Test func catalogueIsLargeAndDistinct() {
        #expect(DiagnosticCatalogue.cases.count >= 30)
        #expect(Set(DiagnosticCatalogue.cases.map(\.name)).count == DiagnosticCatalogue.cases.count)
        #expect(Set(DiagnosticCatalogue.cases.map(\.expected)).count == DiagnosticCatalogue.cases.count)
    }

    @Test(arguments: DiagnosticCatalogue.cases)
    func rendersExactly(_ entry: DiagnosticCatalogue.Case) {
        #expect(GoldenDiagnosticTests.render(entry) == entry.expected)
    }
}
