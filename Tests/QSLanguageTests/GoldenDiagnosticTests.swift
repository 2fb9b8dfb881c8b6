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

/// Code reacts to diagnostics by identity, never by wording: each identity named in
/// `DiagnosticID` is the one its factory gives, and every catalogued mistake has an identity.
struct DiagnosticIdentityTests {
    @Test func identitiesAreTheFactories() {
        let file = SourceFile(name: "t.qs", text: "\"abc")
        let range = SourceRange(0, 4)
        #expect(Diagnostic.unterminatedString(file: file, range: range).id == .unterminatedString)
        #expect(Diagnostic.recipeFailedHere("r", file: file, range: range).id == .recipeFailedHere)
        #expect(Diagnostic.commandWarning("load", "m", file: file, range: range).id == .commandWarning)
        #expect(Diagnostic.commandNote("eval", "m", file: file, range: range).id == .commandNote)
        #expect(Diagnostic.commandWarning("load", "m", file: file, range: range).severity == .warning)
        // The lexer's own diagnostic for an unclosed string carries the identity the REPL checks.
        #expect(Lexer.tokenize(file).diagnostics.map(\.id) == [.unterminatedString])
    }

    @Test(arguments: DiagnosticCatalogue.cases)
    func everyCataloguedMistakeHasAnIdentity(_ entry: DiagnosticCatalogue.Case) {
        let files = MemoryFiles(files: entry.files)
        let checker = Checker(table: TestCommands.table) { target, importer in files.resolve(target, from: importer) }
        let diagnostics = checker.check(SourceFile(name: "main.qs", text: entry.files["main.qs"] ?? ""))
        #expect(!diagnostics.isEmpty)
        #expect(diagnostics.allSatisfy { $0.id != .unspecified }, "\(entry.name)")
    }
}
