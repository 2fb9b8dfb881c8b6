import Testing
@testable import QSLanguage

struct LexerTests {
    /// The kinds and texts of the tokens of `source`, without the final `.end`.
    static func tokens(_ source: String) -> [String] {
        let file = SourceFile(name: "t.qs", text: source)
        let (tokens, _) = Lexer.tokenize(file)
        return tokens.dropLast().map { token in
            let text = file.text(token.range)
            switch token.kind {
            case .number: return "number \(text)"
            case .percent: return "percent \(text)"
            case .ratio: return "ratio \(text)"
            case .string: return "string \(text)"
            case .word: return "word \(text)"
            case .keyword: return "keyword \(text)"
            case .optionKey: return "option \(text)"
            case .symbol: return "symbol \(text)"
            case .newline: return "newline"
            case .invalid: return "invalid \(text)"
            case .end: return "end"
            }
        }
    }

    @Test(arguments: [
        ("load smollm2-135m", ["word load", "word smollm2-135m"]),
        ("quantize layer.* bits=4 asym", ["word quantize", "word layer.*", "option bits=", "number 4", "word asym"]),
        ("prune global 30%", ["word prune", "word global", "percent 30%"]),
        ("mix pattern=2:4", ["word mix", "option pattern=", "ratio 2:4"]),
        ("save out/model-q4 format=gptq", ["word save", "word out/model-q4", "option format=", "word gptq"]),
        ("load ~/models/x", ["word load", "word ~/models/x"]),
        ("quantize layer.[0-5].* bits=8", ["word quantize", "word layer.[0-5].*", "option bits=", "number 8"]),
        ("quantize layer.[1,3,8-11].attn.q", ["word quantize", "word layer.[1,3,8-11].attn.q"]),
        ("layers *.weight", ["word layers", "word *.weight"]),
        ("load ./x ../y /abs/z", ["word load", "word ./x", "word ../y", "word /abs/z"]),
        ("let x = 0.5 + 1e-3", ["keyword let", "word x", "symbol =", "number 0.5", "symbol +", "number 1e-3"]),
        ("assert r.ppl <= base.ppl * 1.15, \"msg\"", ["keyword assert", "word r.ppl", "symbol <=", "word base.ppl", "symbol *", "number 1.15", "symbol ,", "string \"msg\""]),
        ("print \"a {x} b\" # comment", ["keyword print", "string \"a {x} b\""]),
        ("a\nb", ["word a", "newline", "word b"]),
        ("a \\\n b", ["word a", "word b"]),
        ("xs[0] [1]", ["word xs", "symbol [", "number 0", "symbol ]", "symbol [", "number 1", "symbol ]"]),
        ("a == b != c", ["word a", "symbol ==", "word b", "symbol !=", "word c"]),
        ("x=1", ["option x=", "number 1"]),
        ("if a { } else { }", ["keyword if", "word a", "symbol {", "symbol }", "keyword else", "symbol {", "symbol }"]),
        ("eval 8bit 135m", ["word eval", "word 8bit", "word 135m"]),
        ("not true and false or none", ["keyword not", "keyword true", "keyword and", "keyword false", "keyword or", "keyword none"]),
        ("a @ b", ["word a", "invalid @", "word b"]),
        ("r.ppl", ["word r.ppl"]),
        ("(a).b", ["symbol (", "word a", "symbol )", "symbol .", "word b"]),
        ("-3 - x", ["symbol -", "number 3", "symbol -", "word x"]),
        ("a; b", ["word a", "symbol ;", "word b"]),
    ] as [(String, [String])])
    func tokenTable(source: String, expected: [String]) {
        #expect(LexerTests.tokens(source) == expected)
    }

    @Test func rangesAreExactByteOffsets() {
        let file = SourceFile(name: "t.qs", text: "print \"é {x}\" bits=4")
        let (tokens, diagnostics) = Lexer.tokenize(file)
        #expect(diagnostics.isEmpty)
        #expect(tokens.map(\.range) == [SourceRange(0, 5), SourceRange(6, 14), SourceRange(15, 20), SourceRange(20, 21), SourceRange(21, 21)])
    }

    @Test func unterminatedStringStopsAtTheLineEnd() {
        let file = SourceFile(name: "t.qs", text: "print \"abc\nload x")
        let (tokens, diagnostics) = Lexer.tokenize(file)
        #expect(diagnostics.map(\.message) == ["unterminated string"])
        #expect(diagnostics.first?.range == SourceRange(6, 10))
        #expect(tokens.map(\.kind).contains(.newline))
    }

    @Test func invalidUTF8IsReportedByByte() {
        let file = SourceFile(name: "t.qs", bytes: Array("load ".utf8) + [0xFF, 0xFE])
        let (_, diagnostics) = Lexer.tokenize(file)
        #expect(diagnostics.map(\.message) == ["invalid UTF-8 byte 0xFF", "invalid UTF-8 byte 0xFE"])
    }

    @Test func locationCountsCharactersNotBytes() {
        let file = SourceFile(name: "t.qs", text: "a\n\"é\" x")
        #expect(file.location(of: 7) == SourceLocation(line: 2, column: 5, lineStart: 2))
    }
}
