import Foundation
import Testing
@testable import QSInterpreter
@testable import QSREPL

/// The REPL's view of a real session: completeness of input and completion from the command
/// table and the loaded model.
@Suite struct SessionBridgeTests {
    static let llama = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("QSEngineTests/Fixtures/arch/llama").path

    static func bridge() -> SessionBridge {
        let runner = ScriptRunner()
        runner.session.output = { _ in }
        return SessionBridge(runner: runner)
    }

    @Test(arguments: [
        ("print 1", true), ("recipe r() {", false), ("if x > 1 {\n print 1\n}", true), ("let a = [1,", false),
        ("print \"abc", false), ("print \"{\"", true), ("for i in [1, 2] { print i }", true), ("(1 +", false),
    ])
    func completeness(source: String, complete: Bool) {
        #expect(Self.bridge().isComplete(source) == complete)
    }

    @Test func completesFromTheTableAndTheLoadedModel() throws {
        let bridge = Self.bridge()
        _ = try bridge.session.run("load \"\(Self.llama)\"\nlet base = 3", name: "t")
        let completer = Completer(source: bridge)
        #expect(completer.complete(beforeCursor: "ev").commonPrefix == "eval")
        #expect(completer.complete(beforeCursor: "eval pp").commonPrefix == "ppl")
        #expect(completer.complete(beforeCursor: "eval ppl shakespeare ct").commonPrefix == "ctx=")
        #expect(completer.complete(beforeCursor: "layers layer.0.a").commonPrefix == "layer.0.attn")
        #expect(completer.complete(beforeCursor: "load smol").commonPrefix == "smollm2-135m")
        #expect(completer.complete(beforeCursor: "fetch sh").commonPrefix == "shakespeare")
        #expect(completer.complete(beforeCursor: "help qu").commonPrefix == "quantize")
        #expect(completer.complete(beforeCursor: "help inf").commonPrefix == "info")
        #expect(bridge.variableNames.contains("base"))
    }

    @Test func evaluateKeepsStateAcrossInputsAndSurvivesErrors() throws {
        let bridge = Self.bridge()
        var printed = ""
        bridge.session.output = { printed += $0 }
        bridge.evaluate("let n = 20")
        bridge.evaluate("prnt n")
        bridge.evaluate("n + 1")
        #expect(printed == "21\n")
    }
}
