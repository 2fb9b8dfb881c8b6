import Testing
@testable import QSInterpreter
@testable import QSLanguage

struct InterpreterTests {
    @Test func blocksHaveTheirOwnScope() {
        let test = TestSession()
        #expect(test.run("let x = 1\nif true {\n    let y = 2\n    x = x + y\n}\nprint x") == nil)
        #expect(test.output == "3\n")
        #expect(test.run("if true {\n    let inner = 2\n}\nprint inner") == """
            main.qs:4:7: error: undefined variable 'inner'
            4 | print inner
              |       ^~~~~
              = note: define it with 'let inner = ...', or quote it to use the word: "inner"

            """)
    }

    @Test func variablesSurviveBetweenRuns() throws {
        let test = TestSession()
        #expect(test.run("let n = 4", name: "<repl>") == nil)
        #expect(try test.value("n * 2") == .number(8))
    }

    @Test func recipesTakePositionalNamedAndDefaultArguments() {
        let test = TestSession()
        let source = """
            recipe scale(x, by=2) {
                print x * by
            }
            scale 3
            scale 3 by=5
            scale by=4 x=1
            """
        #expect(test.run(source) == nil)
        #expect(test.output == "6\n15\n4\n")
    }

    @Test func recipesSeeTheScopeTheyWereDefinedInButNotTheCaller() {
        let test = TestSession()
        let source = """
            let factor = 10
            recipe f(x) {
                let local = x * factor
                print local
            }
            f 2
            print local
            """
        #expect(test.run(source)?.hasPrefix("main.qs:7:7: error: undefined variable 'local'") == true)
        #expect(test.output == "20\n")
    }

    @Test func aRecipeMayBeCalledAboveItsDefinition() {
        let test = TestSession()
        #expect(test.run("greet \"you\"\nrecipe greet(name) {\n    print \"hello {name}\"\n}") == nil)
        #expect(test.output == "hello you\n")
    }

    @Test func recipeArgumentsAreChecked() {
        let test = TestSession()
        #expect(test.run("recipe f(a, b=1) {\n}\nf 1 2 3") == """
            main.qs:3:7: error: too many arguments: 'f' takes 2 positional arguments
            3 | f 1 2 3
              |       ^
              = note: usage: f A [B]

            """)
        #expect(test.run("f") != nil)
        #expect(test.run("f c=1")?.contains("unknown option 'c' for 'f'") == true)
    }

    @Test func forAndIfCompute() {
        let test = TestSession()
        let source = """
            let total = 0
            for b in [8, 4, 3, 2] {
                if b >= 4 {
                    total = total + b
                } else if b == 3 {
                    total = total + 100
                } else {
                    total = total - 1
                }
            }
            print "total {total}"
            """
        #expect(test.run(source) == nil)
        #expect(test.output == "total 111\n")
    }

    @Test func assertFailureHasTheMessageAndTheConditionsPlace() {
        let test = TestSession()
        let source = "let r = eval ppl shakespeare\nassert r.ppl < 10, \"ppl too high: {r.ppl}\"\nprint \"not reached\""
        #expect(test.run(source) == """
            main.qs:2:8: error: assertion failed: ppl too high: 12.5
            2 | assert r.ppl < 10, "ppl too high: {r.ppl}"
              |        ^~~~~~~~~~

            """)
        #expect(test.output.isEmpty)
    }

    @Test func commandsReturnRecordsWithFields() throws {
        let test = TestSession()
        #expect(try test.value("let r = eval ppl ctx=256\nr.ctx") == .number(256))
        #expect(try test.value("let r = eval\nr.text") == .pattern("shakespeare"))
        #expect(test.run("let r = eval\nprint r.pll") == """
            main.qs:2:9: error: the record has no field 'pll'
            2 | print r.pll
              |         ^~~
              = note: did you mean 'ppl'?
              = note: its fields are 'ppl', 'ctx', 'text'
              = fix: replace 'pll' with 'ppl'

            """)
    }

    @Test func variablesAndFieldsCanBeArguments() throws {
        let test = TestSession()
        #expect(test.run("let b = 3\nlet p = \"layer.*.mlp.*\"\nquantize p bits=b\nlet r = quantize bits=b\nquantize bits=r.bits sym") == nil)
        #expect(test.quantized.map { $0["bits"] } == [.number(3), .number(3), .number(3)])
        #expect(test.quantized[0]["pattern"] == .string("layer.*.mlp.*"))
        #expect(test.quantized[1]["pattern"] == .pattern("*"))
        #expect(test.quantized[2].has("sym"))
    }

    @Test func valuesFromVariablesAreCheckedWhenTheyArrive() {
        let test = TestSession()
        #expect(test.run("let b = 12\nquantize layer.* bits=b") == """
            main.qs:2:23: error: 'bits' of 'quantize' is 12, out of range
            2 | quantize layer.* bits=b
              |                       ^
              = note: it must be between 2 and 8

            """)
    }

    @Test func recursionIsBounded() {
        let test = TestSession()
        let rendered = test.run("recipe down(n) {\n    down (n + 1)\n}\ndown 0")
        #expect(rendered?.hasPrefix("""
            main.qs:2:5: error: recipe calls nest too deep: 'down' at depth \(Session.maxRecipeDepth)
            2 |     down (n + 1)
              |     ^~~~~~~~~~~~
            """) == true)
        #expect(rendered?.contains("main.qs:4:1: note: in recipe 'down' called here") == true)
    }

    @Test func recursionWithAStopRuns() {
        let test = TestSession()
        #expect(test.run("recipe count(n) {\n    if n > 0 {\n        print n\n        count (n - 1)\n    }\n}\ncount 3") == nil)
        #expect(test.output == "3\n2\n1\n")
    }

    @Test func handlerErrorsAreWrappedWithTheirPlace() {
        let test = TestSession()
        #expect(test.run("load missing") == """
            main.qs:1:6: error: load: 'model': no model called 'missing'
            1 | load missing
              |      ^~~~~~~

            """)
        #expect(test.run("\nload broken") == """
            main.qs:2:1: error: load: out/broken.gguf: tensor 'embed' is truncated
            2 | load broken
              | ^~~~~~~~~~~

            """)
    }

    @Test(arguments: [
        ("let x = 1 + \"a\"", "'+' cannot combine a number (1) and a string (\"a\")"),
        ("let x = 1 / 0", "division by zero"),
        ("if 1 {\n}", "condition must be true or false, found a number (1)"),
        ("let x = [1, 2][2]", "index 2 is out of range for a list of 2"),
        ("for x in 3 {\n}", "'for' needs a list, found a number (3)"),
        ("let x = not 3", "'not' expects true or false, found a number (3)"),
        ("let x = 3\nlet y = x.ppl", "cannot read field 'ppl' of a number (3)"),
        ("y = 1", "cannot assign to undefined variable 'y'"),
        ("use nothing", "cannot find 'nothing' to import"),
        ("recipe eval() {\n}", "recipe 'eval' is already defined"),
    ] as [(String, String)])
    func runtimeErrors(source: String, message: String) {
        let test = TestSession()
        do {
            _ = try test.session.run(SourceFile(name: "main.qs", text: source))
            Issue.record("expected an error")
        } catch {
            #expect(error.diagnostics.map(\.message) == [message])
        }
    }

    @Test func aSyntaxErrorStopsTheRunBeforeAnythingRuns() {
        let test = TestSession()
        #expect(test.run("print \"first\"\nlet = 3") != nil)
        #expect(test.output.isEmpty)
    }

    @Test func useImportsOnceAndFindsTheLibrary() {
        let test = TestSession(files: [
            "/work/lib.qs": "print \"loading lib\"\nrecipe int4(p) {\n    quantize p bits=4 asym\n}\n",
            "/lib/int8.qs": "recipe int8(p) {\n    quantize p bits=8\n}\n",
        ])
        #expect(test.run("use \"lib.qs\"\nuse \"./lib.qs\"\nuse int8\nint4 layer.*\nint8 embed", name: "/work/main.qs") == nil)
        #expect(test.output == "loading lib\n")
        #expect(test.quantized.map { $0["bits"] } == [.number(4), .number(8)])
        #expect(test.run("use \"lib.qs\"", name: "/work/main.qs") == nil)
        #expect(test.output == "loading lib\n")
    }

    @Test func importCyclesAreReported() {
        let test = TestSession(files: ["/w/a.qs": "use \"b.qs\"\n", "/w/b.qs": "use \"a.qs\"\n"])
        #expect(test.run("use \"a.qs\"", name: "/w/main.qs") == """
            /w/b.qs:1:5: error: import cycle: /w/a.qs -> /w/b.qs -> /w/a.qs
            1 | use "a.qs"
              |     ^~~~~~

            """)
    }

    @Test func helpAndSetComeFromTheTable() throws {
        let test = TestSession()
        #expect(test.run("help quantize") == nil)
        #expect(test.output == test.session.table["quantize"]!.helpText)
        #expect(test.run("set threads=3 seed=9") == nil)
        #expect(test.session.setting("threads") == .number(3))
        #expect(test.session.setting("seed") == .number(9))
        #expect(test.run("set threads=2000")?.contains("'threads' of 'set' is 2000, out of range") == true)
        #expect(test.run("set thread=2")?.contains("did you mean 'threads'?") == true)
        #expect(test.run("help quantise")?.contains("no such command; did you mean 'quantize'?") == true)
    }

    @Test func registeredSettingsJoinSet() {
        let test = TestSession()
        test.session.registerSetting(ArgumentSpec("cache", .path, help: "where models go", default: .word("~/.cache/qs")))
        #expect(test.run("set cache=/tmp/qs") == nil)
        #expect(test.session.setting("cache") == .pattern("/tmp/qs"))
    }

    @Test func checkFirstStopsARunWithABindingErrorLater() {
        let test = TestSession()
        #expect(throws: DiagnosticList.self) {
            try test.session.run(SourceFile(name: "main.qs", text: "print \"ran\"\nquantize bits=9"), checkFirst: true)
        }
        #expect(test.output.isEmpty)
    }

    @Test func handlersGetCompiledGlobs() throws {
        let test = TestSession()
        test.session.register(CommandSpec("layers", summary: "List layers.", positionals: [ArgumentSpec("pattern", .pattern, help: "", default: .word("*"))])) { invocation, session in
            let match = try invocation.glob("pattern").match(["embed", "layer.0.mlp.up", "head"])
            session.output(match.matched.joined(separator: " ") + "\n")
            return .list(match.matched.map { .string($0) })
        }
        #expect(test.run("layers layer.*\nlayers") == nil)
        #expect(test.output == "layer.0.mlp.up\nembed layer.0.mlp.up head\n")
        #expect(test.run("layers layer.[9-1].*") == """
            main.qs:1:8: error: layers: 'pattern': range [9-1] is empty
            1 | layers layer.[9-1].*
              |        ^~~~~~~~~~~~~

            """)
    }

    @Test func checkFindsEveryErrorWithoutRunning() {
        let test = TestSession()
        let diagnostics = test.session.check(SourceFile(name: "main.qs", text: "print \"ran\"\nloda x\nquantize bits=9\nassert undefined_thing > 1"))
        #expect(diagnostics.map(\.message) == [
            "unknown command 'loda'", "'bits' of 'quantize' is 9, out of range", "undefined variable 'undefined_thing'",
        ])
        #expect(test.output.isEmpty)
    }
}
