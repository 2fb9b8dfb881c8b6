import Foundation
import Testing
@testable import QSEngine
@testable import QSInterpreter
@testable import QSLanguage

/// The engine commands on the tiny random models of Tests/QSEngineTests/Fixtures/arch.
@Suite struct EngineCommandsTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("QSEngineTests/Fixtures/arch")

    final class Captured: @unchecked Sendable {
        var text = ""
        var reports: [Diagnostic] = []
    }

    static func session() -> (Session, Captured) {
        let captured = Captured()
        let session = Session(output: { captured.text += $0 })
        session.report = { captured.reports.append($0) }
        return (session, captured)
    }

    static func errorText(_ session: Session, _ source: String) -> String? {
        do {
            _ = try session.run(source, name: "t.qs")
            return nil
        } catch {
            return DiagnosticRenderer(color: false).render(error.diagnostics)
        }
    }

    @Test func loadInfoAndLayers() throws {
        let (session, output) = Self.session()
        let path = Self.fixtures.appendingPathComponent("llama").path
        let loaded = try session.run("let m = load \"\(path)\"\nm", name: "t.qs")
        let record = try #require(loaded.record)
        #expect(record["architecture"] == .string("llama"))
        #expect(record["layers"] == .number(2))
        #expect(record["bits_per_weight"] == .number(32))
        let layers = try #require(try session.run("layers layer.*.mlp.*", name: "t.qs").record)
        #expect(layers["count"] == .number(6))
        #expect(output.text.contains("layer.1.mlp.down  model.layers.1.mlp.down_proj"))
        let byCheckpointName = try #require(try session.run("layers model.layers.0.self_attn.*", name: "t.qs").record)
        #expect(byCheckpointName["count"] == .number(4))
        let ranged = try #require(try session.run("layers layer.[1].attn.?", name: "t.qs").record)
        #expect(ranged["count"] == .number(4))
    }

    @Test func patternMatchingNothingListsCloseNames() throws {
        let (session, _) = Self.session()
        _ = try session.run("load \"\(Self.fixtures.appendingPathComponent("llama").path)\"", name: "t.qs")
        let error = try #require(Self.errorText(session, "layers layer.1.atn.q"))
        #expect(error.contains("t.qs:1:8: error:"))
        #expect(error.contains("matches no layer"))
        #expect(error.contains("layer.1.attn.q"))
    }

    @Test func commandsNeedALoadedModel() throws {
        let (session, _) = Self.session()
        let error = try #require(Self.errorText(session, "info"))
        #expect(error.contains("no model is loaded; use 'load NAME|PATH' first"))
    }

    @Test func evaluationWithoutATokenizerSaysSo() throws {
        let (session, _) = Self.session()
        _ = try session.run("load \"\(Self.fixtures.appendingPathComponent("llama").path)\"", name: "t.qs")
        let error = try #require(Self.errorText(session, "eval ppl shakespeare"))
        #expect(error.contains("has no tokenizer"))
        let tooLong = try #require(Self.errorText(session, "eval ppl shakespeare ctx=4096"))
        #expect(tooLong.contains("4096 is longer than"))
        let wrongKind = try #require(Self.errorText(session, "eval classify"))
        #expect(wrongKind.contains("needs an encoder"))
    }

    @Test func unsupportedArchitectureIsNamedWithTheSupportedOnes() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("qs-t5-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data(#"{"model_type": "t5", "d_model": 8}"#.utf8).write(to: folder.appendingPathComponent("config.json"))
        let (session, _) = Self.session()
        let error = try #require(Self.errorText(session, "load \"\(folder.path)\""))
        #expect(error.contains("t5"))
        for name in ["llama", "qwen2", "gpt2", "bert"] { #expect(error.contains(name), "\(name) not listed: \(error)") }
    }

    @Test func unknownModelNameListsTheRegistry() throws {
        let (session, _) = Self.session()
        let error = try #require(Self.errorText(session, "load smollm3-xl"))
        #expect(error.contains("smollm2-135m"))
    }
}

extension EngineCommandsTests {
    /// A model whose tokenizer qs cannot read still loads; text commands name the reason.
    @Test func unreadableTokenizerWarnsAndExplains() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("qs-tok-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("llama"), to: folder)
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data(#"{"model": {"type": "Unigram", "vocab": []}}"#.utf8).write(to: folder.appendingPathComponent("tokenizer.json"))
        let (session, output) = Self.session()
        _ = try session.run("load \"\(folder.path)\"", name: "t.qs")
        // The warning is a diagnostic at the load command, not printed output.
        let warning = try #require(output.reports.first)
        #expect(warning.severity == .warning && warning.id == .commandWarning)
        #expect(DiagnosticRenderer().render(warning).hasPrefix("t.qs:1:1: warning: load: the tokenizer could not be read"))
        #expect(!output.text.contains("warning"))
        let error = try #require(Self.errorText(session, "generate \"hello\""))
        #expect(error.contains("Unigram"))
    }
}
