import Foundation
import Testing
@testable import QSEngine
@testable import QSInterpreter
@testable import QSLanguage

/// Baselines and snapshots on the real SmolLM2 (QS_SMOLLM2_GGUF and QS_SHAKESPEARE_DIR, set by
/// scripts/test): once weights change, `eval` reports the model as loaded beside them, and
/// snapshot / restore / reset move between weight sets.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["QS_SMOLLM2_GGUF"] != nil
    && ProcessInfo.processInfo.environment["QS_SHAKESPEARE_DIR"] != nil))
struct BaselineAndSnapshotTests {
    final class Captured: @unchecked Sendable { var text = "" }

    @Test func evalComparesWithTheModelAsLoadedAndSnapshotsRestore() throws {
        let environment = ProcessInfo.processInfo.environment
        let captured = Captured()
        let session = Session(output: { captured.text += $0 })
        let text = "\"\(environment["QS_SHAKESPEARE_DIR"]!)\""
        _ = try session.run("load \"\(environment["QS_SMOLLM2_GGUF"]!)\"", name: "t.qs")
        let eval = "eval ppl \(text) tokens=300 ctx=150"
        let original = try #require(try session.run(eval, name: "t.qs").record?["ppl"]?.number)

        // Damage one MLP the way a bad quantizer would.
        let loaded = try #require(session.workspace.loaded)
        let name = try #require(loaded.model.names.entry("layer.3.mlp.down")).weight
        let weights = try loaded.weights.floats(name)
        try loaded.weights.replace(name, with: weights.map { ($0 * 8).rounded() / 8 })
        _ = try session.run("snapshot rounded", name: "t.qs")
        captured.text = ""
        let changed = try #require(try session.run(eval, name: "t.qs").record)
        #expect(changed["ppl"]?.number != original)
        #expect(changed["base_ppl"]?.number == original)
        #expect(captured.text.contains("as loaded"))
        #expect(try #require(changed["size_mb"]?.number) > 96.58)  // the replaced tensor is held in fp32

        _ = try session.run("reset", name: "t.qs")
        #expect(try session.run(eval, name: "t.qs").record?["ppl"]?.number == original)
        _ = try session.run("restore rounded", name: "t.qs")
        #expect(try session.run(eval, name: "t.qs").record?["ppl"]?.number == changed["ppl"]?.number)

        let kld = try #require(try session.run("eval kld \(text) tokens=300 ctx=150", name: "t.qs").record)
        #expect(try #require(kld["kld"]?.number) > 0)
        #expect(kld["base_ppl"]?.number.map { abs($0 - original) / original < 1e-6 } == true)
        #expect(kld["ppl"]?.number.map { abs($0 - changed["ppl"]!.number!) / $0 < 1e-6 } == true)
        do {
            _ = try session.run("restore nothing", name: "t.qs")
            Issue.record("restored a snapshot that was never taken")
        } catch {
            #expect(DiagnosticRenderer(color: false).render(error.diagnostics).contains("taken: rounded"))
        }
    }
}
