import Testing
@testable import QSLanguage

struct ParserTests {
    static func parse(_ source: String) -> (statements: [Statement], messages: [String]) {
        let (unit, diagnostics) = Parser.parse(SourceFile(name: "t.qs", text: source))
        return (unit.statements, diagnostics.map(\.message))
    }

    static func reprint(_ source: String) -> String {
        SyntaxPrinter.print(parse(source).statements)
    }

    /// Source and its canonical printing; printing what the printing parses to gives it again.
    @Test(arguments: [
        ("load smollm2-135m", "load smollm2-135m\n"),
        ("quantize layer.* bits=4 asym", "quantize layer.* bits=4 asym\n"),
        ("prune global 30%", "prune global 30%\n"),
        ("eval", "eval\n"),
        ("save out/x format=gptq", "save out/x format=gptq\n"),
        ("let base = eval ppl shakespeare ctx=512", "let base = eval ppl shakespeare ctx=512\n"),
        ("let x = 1 + 2 * 3", "let x = 1 + 2 * 3\n"),
        ("let x = (1 + 2) * 3", "let x = (1 + 2) * 3\n"),
        ("let x = 1 - (2 - 3)", "let x = 1 - (2 - 3)\n"),
        ("let x = -a.b", "let x = -a.b\n"),
        ("assert r.ppl < base.ppl * 1.15, \"lost {base.ppl - r.ppl}\"", "assert r.ppl < base.ppl * 1.15, \"lost {base.ppl - r.ppl}\"\n"),
        ("assert not a and b or c", "assert (not a) and b or c\n"),
        ("x = [8, 4, 3][0]", "x = [8, 4, 3][0]\n"),
        ("mix pattern=2:4 widths=[8, 4]", "mix pattern=2:4 widths=[8, 4]\n"),
        ("quantize p bits=(b * 2)", "quantize p bits=(b * 2)\n"),
        ("print \"a\\n\\\"b\\\" \\{x\\}\"", "print \"a\\n\\\"b\\\" \\{x\\}\"\n"),
        ("if a > 1 { print 1 } else if a < 0 { print 2 } else { print 3 }", "if a > 1 {\n    print 1\n} else if a < 0 {\n    print 2\n} else {\n    print 3\n}\n"),
        ("for b in [8, 4] {\n quantize layer.* bits=b\n}", "for b in [8, 4] {\n    quantize layer.* bits=b\n}\n"),
        ("recipe int4(pattern, bits=4) { quantize pattern bits=bits asym }", "recipe int4(pattern, bits=4) {\n    quantize pattern bits=bits asym\n}\n"),
        ("use \"lib/x.qs\"\nuse int4", "use \"lib/x.qs\"\nuse int4\n"),
        ("prune layer -0.5", "prune layer -0.5\n"),
        ("a; b", "a\nb\n"),
        ("if x {\n}\nelse {\n}", "if x {\n} else {\n}\n"),
        ("r.ppl", "r.ppl\n"),
        ("n * 2", "n * 2\n"),
        ("xs[0]", "xs[0]\n"),
        ("(1 + 2) * 3", "(1 + 2) * 3\n"),
        ("quantize * bits=4", "quantize * bits=4\n"),
        ("quantize * asym", "quantize * asym\n"),
        ("quantize *", "quantize *\n"),
        ("n * (m + 1)", "n * (m + 1)\n"),
        ("prune layer -3", "prune layer -3\n"),
    ] as [(String, String)])
    func roundTrip(source: String, printed: String) {
        let (_, messages) = ParserTests.parse(source)
        #expect(messages.isEmpty)
        #expect(ParserTests.reprint(source) == printed)
        #expect(ParserTests.reprint(printed) == printed)
    }

    @Test func designCardFormsParseAsCommands() {
        let (statements, messages) = ParserTests.parse("quantize layer.* bits=4 asym\nprune global 30%")
        #expect(messages.isEmpty)
        guard case .command(let quantize) = statements[0].kind, case .command(let prune) = statements[1].kind else {
            Issue.record("expected two commands")
            return
        }
        #expect(quantize.name.text == "quantize")
        #expect(quantize.arguments.count == 3)
        #expect(quantize.arguments[1] == .option(Name("bits", SourceRange(17, 21)), Expression(.number(4, isPercent: false), SourceRange(22, 23))))
        #expect(quantize.arguments[2] == .positional(Expression(.word("asym"), SourceRange(24, 28))))
        #expect(prune.arguments[1] == .positional(Expression(.number(0.3, isPercent: true), SourceRange(42, 45))))
    }

    @Test func commandAsValueAndVariableAsValue() {
        let (statements, _) = ParserTests.parse("let r = eval ppl\nlet s = r\nlet t = eval")
        guard case .letBinding(_, let first) = statements[0].kind, case .letBinding(_, let second) = statements[1].kind,
            case .letBinding(_, let third) = statements[2].kind
        else {
            Issue.record("expected three lets")
            return
        }
        if case .command(let call) = first.kind { #expect(call.name.text == "eval") } else { Issue.record("not a command") }
        #expect(second.kind == .variable("r"))
        #expect(third.kind == .variable("eval"))
    }

    @Test func interpolationRangesPointIntoTheFile() {
        let (statements, _) = ParserTests.parse("print \"x {r.ppl}\"")
        guard case .print(let values) = statements[0].kind, case .string(let parts) = values[0].kind,
            case .interpolation(let inner) = parts[1]
        else {
            Issue.record("expected an interpolation")
            return
        }
        #expect(inner.range == SourceRange(10, 15))
    }

    @Test func recoversAtTheNextStatement() {
        let (statements, messages) = ParserTests.parse("let = 3\nload x\nlet y = (1 +\nprune global 30%\n}\nsave y")
        #expect(messages.count == 3)
        #expect(statements.count == 3)
    }

    @Test func unclosedBlockIsReportedOnce() {
        let (_, messages) = ParserTests.parse("if a {\n  for x in y {\n    if b {\n")
        #expect(messages == ["expected '}' to close the block"])
    }

    static let deepInputs: [String: String] = [
        "parentheses": "let x = " + String(repeating: "(", count: 10_000) + "1",
        "lists": "let x = " + String(repeating: "[", count: 5_000),
        "negations": "let x = " + String(repeating: "- ", count: 5_000) + "1",
        "nots": "let x = " + String(repeating: "not ", count: 5_000) + "true",
        "blocks": String(repeating: "if a {\n", count: 2_000),
        "sums": "let x = 1" + String(repeating: " + 1", count: 20_000),
        "members in one word": "let x = a" + String(repeating: ".b", count: 20_000),
        "members after parentheses": "let x = (a)" + String(repeating: ".b", count: 20_000),
        "indexes": "let x = a" + String(repeating: "[0]", count: 20_000),
        "argument lists": "quantize " + String(repeating: "[", count: 5_000),
    ]

    @Test(arguments: deepInputs.keys.sorted())
    func deepNestingIsBounded(input: String) {
        let (_, messages) = ParserTests.parse(ParserTests.deepInputs[input]!)
        #expect(messages.contains("nesting is too deep (more than \(Parser.maxNestingDepth) levels)"))
    }
}
