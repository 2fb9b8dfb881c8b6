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

/// Output stays bounded whatever the input: a file shows its first diagnostics and the count of
/// the rest, and a long line is cut around the caret.
struct BoundedOutputTests {
    @Test func diagnosticsPastTheLimitAreCounted() {
        let file = SourceFile(name: "a.qs", text: String(repeating: "@\n", count: 30))
        let (_, diagnostics) = Parser.parse(file)
        #expect(diagnostics.count == 30)
        let rendered = DiagnosticRenderer().render(diagnostics)
        #expect(rendered.components(separatedBy: ": error: ").count - 1 == DiagnosticRenderer.limitPerFile)
        #expect(rendered.hasSuffix("a.qs: 10 more errors not shown\n"))
        // Another file's diagnostics have their own allowance.
        let other = Parser.parse(SourceFile(name: "b.qs", text: "@")).diagnostics
        #expect(DiagnosticRenderer().render(diagnostics + other).contains("b.qs:1:1: error:"))
    }

    @Test func aLongLineIsCutAroundTheCaret() {
        let line = String(repeating: "a", count: 500) + " @ " + String(repeating: "b", count: 500)
        let rendered = DiagnosticRenderer().render(Parser.parse(SourceFile(name: "a.qs", text: line)).diagnostics[0])
        let lines = rendered.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0] == "a.qs:1:502: error: unexpected character '@'")
        #expect(lines[1].hasPrefix("1 | …") && lines[1].hasSuffix("…"))
        #expect(lines[1].count <= DiagnosticRenderer.maxLineWidth + 4)
        // The caret still points at the '@'.
        let caret = lines[2].firstIndex(of: "^")!
        let at = lines[1].firstIndex(of: "@")!
        #expect(lines[2].distance(from: lines[2].startIndex, to: caret) == lines[1].distance(from: lines[1].startIndex, to: at))
    }

    @Test func megabytesOfBadBytesStayBounded() {
        let bytes = [UInt8]((0 ..< 1_000_000).map { $0 % 3 == 0 ? 0x0A : 0xFF })
        let (_, diagnostics) = Parser.parse(SourceFile(name: "bin.qs", bytes: bytes))
        #expect(diagnostics.count <= Lexer.maxDiagnostics + 1)
        #expect(diagnostics.last?.message.contains("the rest of the file is not read") == true)
    }
}
