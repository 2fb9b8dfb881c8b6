import QSTestSupport
import Testing
@testable import QSInterpreter
@testable import QSLanguage

/// Mutated scripts run to a value or to diagnostics, never to a crash or a hang.
struct InterpreterFuzzTests {
    static let seeds = [
        "let base = eval ppl shakespeare ctx=512\nquantize layer.*.mlp.* bits=4 asym\nlet r = eval\nprint \"{base.ppl} -> {r.ppl}\"\nassert r.ppl <= base.ppl, \"worse\"",
        "recipe f(n, step=1) {\n    if n > 0 {\n        f (n - step) step=step\n    } else {\n        print \"done {n}\"\n    }\n}\nf 5\nfor b in [8, 4] { quantize layer.[0-3].* bits=b }",
        "let xs = [1, 2, 3]\nlet total = 0\nfor x in xs { total = total + x * xs[0] / 2 }\nprint total\nhelp\nset threads=2",
    ]

    @Test func mutatedScriptsEndInAValueOrDiagnostics() {
        var generator = TestGenerator(seed: 7)
        var failures = 0
        for _ in 0..<1_500 {
            var bytes = Array(InterpreterFuzzTests.seeds.randomElement(using: &generator)!.utf8)
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let position = Int.random(in: 0...bytes.count, using: &generator)
                switch Int.random(in: 0..<4, using: &generator) {
                case 0: bytes.insert(Array("{}[]()\"=.\n-+*/0129 xfnbr".utf8).randomElement(using: &generator)!, at: position)
                case 1 where position < bytes.count: bytes.remove(at: position)
                case 2: bytes.insert(UInt8.random(in: 0...255, using: &generator), at: position)
                default: bytes = Array(bytes[..<position])
                }
            }
            let test = TestSession()
            do {
                _ = try test.session.run(SourceFile(name: "fuzz.qs", bytes: bytes))
            } catch {
                failures += 1
                #expect(!error.diagnostics.isEmpty)
                #expect(!DiagnosticRenderer().render(error.diagnostics).isEmpty)
            }
        }
        #expect(failures > 300)
    }
}

