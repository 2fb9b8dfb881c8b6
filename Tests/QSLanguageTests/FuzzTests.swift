import QSTestSupport
import Testing
@testable import QSLanguage

/// Random and mutated scripts: each must give diagnostics or a clean parse, never a crash or
/// a hang, and every diagnostic must render.
struct FuzzTests {
    static let seeds = [
        """
        load smollm2-135m
        let base = eval ppl shakespeare ctx=512
        quantize layer.*.mlp.* bits=4 group=64 sym method=gptq
        prune global 30%
        let r = eval ppl shakespeare ctx=512
        print "ppl {base.ppl} -> {r.ppl}"
        assert r.ppl < base.ppl * 1.15, "recipe lost too much"
        save out/smollm2-mixed format=gptq
        """,
        """
        recipe int4(pattern, bits=4) {
            for b in [8, 4, 3] {
                if b == bits { quantize pattern bits=b asym } else if b > 4 { print "skip {b}" } else { prune layer 10% }
            }
        }
        use "lib.qs"
        int4 layer.[0-5].* bits=(2 + 2)
        x = [1, 2][0] + -3 / (4 - 1)
        """,
    ]

    static let vocabulary = [
        "load", "quantize", "prune", "eval", "save", "let", "if", "else", "for", "in", "recipe", "use", "print", "assert",
        "and", "or", "not", "true", "false", "none", "x", "r.ppl", "layer.*", "out/x", "~/m", "layer.[0-5].*", "bits=",
        "4", "0.5", "30%", "2:4", "1e999", "99999999999999999999:1", "\"s {x} \\n\"", "\"{\"", "\"\\q\"", "\"", "{", "}",
        "(", ")", "[", "]", ",", ".", "=", "==", "<", ">=", "+", "-", "*", "/", ";", "\n", "#c\n", "\\\n", "@", "é",
    ]

    static func randomScript(_ generator: inout TestGenerator) -> [UInt8] {
        let count = Int.random(in: 1...60, using: &generator)
        var text = ""
        for _ in 0..<count {
            text += vocabulary.randomElement(using: &generator)!
            text += Bool.random(using: &generator) ? " " : ""
        }
        return Array(text.utf8)
    }

    static func mutatedScript(_ generator: inout TestGenerator) -> [UInt8] {
        var bytes = Array(seeds.randomElement(using: &generator)!.utf8)
        for _ in 0..<Int.random(in: 1...8, using: &generator) {
            let position = Int.random(in: 0...bytes.count, using: &generator)
            switch Int.random(in: 0..<5, using: &generator) {
            case 0: bytes.insert(UInt8.random(in: 0...255, using: &generator), at: position)
            case 1 where position < bytes.count: bytes.remove(at: position)
            case 2 where position < bytes.count: bytes[position] = Array("{}[]()\"=.\n#\\".utf8).randomElement(using: &generator)!
            case 3: bytes = Array(bytes[..<position])
            default: bytes.insert(contentsOf: Array(String(repeating: "(", count: Int.random(in: 1...200, using: &generator)).utf8), at: position)
            }
        }
        return bytes
    }

    static func scripts(count: Int, seed: UInt64) -> [[UInt8]] {
        var generator = TestGenerator(seed: seed)
        return (0..<count).map { index in index % 2 == 0 ? randomScript(&generator) : mutatedScript(&generator) }
    }

    @Test func parserAndCheckerSurviveThousandsOfScripts() {
        let checker = Checker(table: TestCommands.table) { target, importer in
            .failure(.importNotFound("x", searched: [], file: importer, range: target.range))
        }
        var withDiagnostics = 0
        for (index, bytes) in FuzzTests.scripts(count: 3_000, seed: 42).enumerated() {
            let file = SourceFile(name: "fuzz\(index).qs", bytes: bytes)
            let (unit, parseDiagnostics) = Parser.parse(file)
            let diagnostics = checker.check(file)
            if !diagnostics.isEmpty { withDiagnostics += 1 }
            #expect(parseDiagnostics.allSatisfy { diagnostics.contains($0) })
            for diagnostic in diagnostics {
                #expect(!DiagnosticRenderer().render(diagnostic).isEmpty)
            }
            if parseDiagnostics.isEmpty {
                let printed = SyntaxPrinter.print(unit.statements)
                #expect(SyntaxPrinter.print(Parser.parse(SourceFile(name: "p", text: printed)).unit.statements) == printed)
            }
        }
        #expect(withDiagnostics > 1_000)
    }
}
