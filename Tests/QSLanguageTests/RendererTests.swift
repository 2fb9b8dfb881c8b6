import Testing
@testable import QSLanguage

struct RendererTests {
    @Test func colourWrapsEachPartAndPlainDoesNot() {
        let file = SourceFile(name: "a.qs", text: "loda x")
        let diagnostic = Diagnostic(.error, "unknown command 'loda'", file: file, range: SourceRange(0, 4))
        let plain = DiagnosticRenderer(color: false).render(diagnostic)
        let colour = DiagnosticRenderer(color: true).render(diagnostic)
        #expect(plain == "a.qs:1:1: error: unknown command 'loda'\n1 | loda x\n  | ^~~~\n")
        #expect(colour.contains("\u{1B}[1;31merror:\u{1B}[0m"))
        #expect(colour.replacing(/\x1B\[[0-9;]*m/, with: "") == plain)
    }

    @Test func columnsCountCharactersAndGutterFitsTheLargestLine() {
        let text = String(repeating: "\n", count: 11) + "print \"é\" x"
        let file = SourceFile(name: "a.qs", text: text)
        let diagnostic = Diagnostic(.error, "m", file: file, range: SourceRange(22, 23))
            .noting("here", file: file, range: SourceRange(0, 0))
        #expect(DiagnosticRenderer().render(diagnostic) == """
            a.qs:12:11: error: m
            12 | print "é" x
               |           ^
            a.qs:1:1: note: here
             1 |
               | ^

            """)
    }

    @Test func rangeOverSeveralLinesIsCutAtTheLineEnd() {
        let file = SourceFile(name: "a.qs", text: "if x {\n}")
        let diagnostic = Diagnostic(.error, "m", file: file, range: SourceRange(3, 8))
        #expect(DiagnosticRenderer().render(diagnostic) == "a.qs:1:4: error: m\n1 | if x {\n  |    ^~~\n")
    }

    @Test func editDistanceCountsSwapsAsOne() {
        #expect(editDistance("loda", "load") == 1)
        #expect(editDistance("bits", "bits") == 0)
        #expect(editDistance("", "abc") == 3)
        #expect(closeMatches(to: "bit", among: ["bits", "group", "method"]) == ["bits"])
        #expect(closeMatches(to: "x", among: ["y", "z"]).isEmpty)
    }

    @Test func helpTextComesFromTheTable() {
        let spec = TestCommands.table["quantize"]!
        #expect(spec.usage == "quantize [PATTERN] [bits=N] [group=32|64|128] [method=rtn|gptq] [sym|asym]")
        #expect(spec.helpText.contains("  bits: an integer — bits per weight (2...8; default 4)"))
        #expect(TestCommands.table.markdownReference.contains("### `quantize`"))
        #expect(TestCommands.table.summaryText.hasPrefix("load       Load a model.\n"))
    }
}
