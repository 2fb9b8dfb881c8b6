import Testing
@testable import QSLanguage

struct BinderTests {
    static func bind(_ source: String, variables: Set<String> = []) -> Result<BoundCommand, DiagnosticList> {
        let file = SourceFile(name: "t.qs", text: source)
        let (unit, diagnostics) = Parser.parse(file)
        precondition(diagnostics.isEmpty, "test source must parse")
        guard case .command(let call) = unit.statements[0].kind else { preconditionFailure("not a command") }
        return Binder(table: TestCommands.table).bind(call, in: file, isVariable: { variables.contains($0) })
    }

    @Test func flagsOptionsAndPositionalsAreSorted() throws {
        let bound = try BinderTests.bind("quantize layer.*.mlp.* bits=4 asym method=gptq").get()
        #expect(bound.arguments.map(\.spec.name) == ["pattern", "bits", "method"])
        #expect(bound.flags.map(\.text) == ["asym"])
    }

    @Test func aPositionalMayBeNamed() throws {
        let bound = try BinderTests.bind("prune amount=30% global").get()
        #expect(bound.argument("scope")?.value.kind == .word("global"))
        #expect(bound.argument("amount")?.value.kind == .number(0.3, isPercent: true))
    }

    /// A bare word that names one of the command's flags is that flag, even where a variable of
    /// the same name exists (a `let asym = ...` anywhere in a script must not turn `quantize ...
    /// asym` into a second positional); such a variable is passed by name. Other variables are
    /// values whose types are checked at run time.
    @Test func aFlagIsAFlagAndAVariableIsCheckedLater() throws {
        let bound = try BinderTests.bind("quantize asym bits=b", variables: ["asym", "b"]).get()
        #expect(bound.flags.map(\.text) == ["asym"])
        #expect(bound.argument("bits")?.value.kind == .word("b"))
        let named = try BinderTests.bind("quantize pattern=asym", variables: ["asym"]).get()
        #expect(named.flags.isEmpty)
        #expect(named.argument("pattern")?.value.kind == .word("asym"))
    }

    @Test func literalsAreCheckedAndEveryProblemReported() {
        guard case .failure(let list) = BinderTests.bind("quantize x bits=1 group=48 method=gptx sym asym") else {
            Issue.record("expected failure")
            return
        }
        #expect(list.diagnostics.map(\.message) == [
            "'bits' of 'quantize' is 1, out of range",
            "'48' is not a valid 'group' for 'quantize'",
            "'gptx' is not a valid 'method' for 'quantize'",
            "flag 'asym' conflicts with 'sym'",
        ])
    }

    @Test func listsAreCheckedElementByElement() {
        guard case .failure(let list) = BinderTests.bind("mix widths=[8, 4.5]") else {
            Issue.record("expected failure")
            return
        }
        #expect(list.diagnostics.map(\.message) == ["'widths' of 'mix' expects an integer, found 4.5"])
    }
}
