import Foundation
import QSTestSupport
import Testing
@testable import QSEngine
@testable import QSInterpreter
@testable import QSLanguage

/// `finetune` and `tune blocks` on the tiny Llama with its tokenizer: quantized layers stay on
/// their grid, masks hold, the records carry the loss curve, Ctrl-C keeps the last whole step,
/// and each bad input is refused at its option before any work.
@Suite struct TrainCommandTests {
    static func list(_ value: Value?) -> [Value]? {
        if case .list(let items)? = value { return items }
        return nil
    }

    @Test func finetuneTrainsQuantizedAndPrunedLayersInPlace() throws {
        let (session, folder, text) = try GPTQCommandTests.session(nil)
        defer { try? FileManager.default.removeItem(at: folder) }
        let loaded = try #require(session.workspace.loaded)
        _ = try session.run("prune layer.0.* 50%\nquantize layer.1.* bits=4 group=16", name: "t.qs")
        let q = try #require(loaded.model.names.entry("layer.1.attn.q"))
        let before = try loaded.weights.weight(q.weight).floats()
        let record = try #require(try session.run("finetune \"\(text.path)\" steps=6 batch=2 seqlen=16 lr=1e-3 warmup=1", name: "t.qs").record)
        #expect(record["steps"] == .number(6) && Self.list(record["losses"])?.count == 6)
        #expect(Self.list(record["losses"])?.allSatisfy { $0.number?.isFinite == true } == true)
        #expect(record["loss"] == .string("ce") && record["tokens"] == .number(6 * 2 * 16))
        // The quantized layer trained on its grid and is packed again.
        let weight = try loaded.weights.weight(q.weight)
        #expect(weight.formName == "int4 g16")
        #expect(try weight.floats() != before)
        // The pruned layer's zeros held.
        let pruned = try loaded.weights.weight(try #require(loaded.model.names.entry("layer.0.mlp.up")).weight)
        let mask = try #require(pruned.mask)
        let values = try pruned.floats()
        #expect((0 ..< values.count).allSatisfy { mask.isKept($0) || values[$0] == 0 })
        #expect(mask.sparsity >= 0.5)
    }

    /// stdlib/train.qs's prune_retrain: Wanda steps (calibrated by the recipe) up to the last
    /// amount, training between them, every pruned weight still zero at the end.
    @Test func pruneRetrainRecipePrunesInStepsWithTraining() throws {
        let (folder, text) = try GPTQCommandTests.model()
        defer { try? FileManager.default.removeItem(at: folder) }
        let session = Session(output: { _ in }, libraryDirectory: DocsAndRecipesTests.root.appendingPathComponent("stdlib").path)
        _ = try session.run("load \"\(folder.path)\"\nuse train", name: "t.qs")
        let losses = try #require(Self.list(try session.run(
            "prune_retrain text=\"\(text.path)\" amounts=[20%, 40%] samples=4 steps=2 seqlen=16", name: "t.qs")))
        #expect(losses.count == 2 && losses.allSatisfy { $0.number?.isFinite == true })
        #expect(session.workspace.calibration != nil)
        let loaded = try #require(session.workspace.loaded)
        for entry in loaded.model.names.entries where entry.canonical.hasPrefix("layer.") {
            guard case .linear = entry.kind else { continue }
            let weight = try loaded.weights.weight(entry.weight)
            let mask = try #require(weight.mask, "\(entry.canonical)")
            #expect(abs(mask.sparsity - 0.4) < 0.05, "\(entry.canonical): \(mask.sparsity)")
            let values = try weight.floats()
            #expect((0 ..< values.count).allSatisfy { mask.isKept($0) || values[$0] == 0 })
        }
    }

    @Test func distillationAndBlockTuningLowerTheirObjectives() throws {
        let (session, folder, text) = try GPTQCommandTests.session("samples=4 seqlen=16")
        defer { try? FileManager.default.removeItem(at: folder) }
        _ = try session.run("quantize layer.* bits=2 group=16", name: "t.qs")
        let tuned = try #require(try session.run("tune blocks steps=30 lr=1e-3 batch=2", name: "t.qs").record)
        let blocks = try #require(Self.list(tuned["blocks"]))
        #expect(blocks.count == 2)
        for block in blocks {
            let before = try #require(block.record?["before"]?.number)
            let after = try #require(block.record?["after"]?.number)
            #expect(after <= before)
        }
        #expect(blocks.contains { ($0.record?["after"]?.number ?? 1) < ($0.record?["before"]?.number ?? 0) })
        let kd = try #require(try session.run("finetune \"\(text.path)\" loss=kd temperature=2 steps=3 batch=1 seqlen=16 params=scales", name: "t.qs").record)
        #expect(kd["loss"] == .string("kd") && kd["steps"] == .number(3))
        #expect(try session.workspace.requireModel().weights.weight(try #require(session.workspace.loaded?.model.names.entry("layer.0.attn.q")).weight).formName == "int2 g16")
    }

    /// GPT-2 (LayerNorm, learned positions, fused q/k/v, Conv1D weights stored in×out) trains
    /// through the same commands: finetune lowers its loss with pruned and quantized layers held,
    /// tune blocks lowers each block's error.
    @Test func gpt2TrainsThroughTheSameCommands() throws {
        let (folder, text) = try GPTQCommandTests.model("gpt2")
        defer { try? FileManager.default.removeItem(at: folder) }
        let session = Session(output: { _ in })
        _ = try session.run("load \"\(folder.path)\"\nprune layer.0.mlp.up 50%\nquantize layer.1.* bits=4 group=16", name: "t.qs")
        let loaded = try #require(session.workspace.loaded)
        let record = try #require(try session.run("finetune \"\(text.path)\" steps=12 batch=2 seqlen=16 lr=3e-3 warmup=1", name: "t.qs").record)
        let losses = try #require(Self.list(record["losses"])).compactMap(\.number)
        #expect(losses.count == 12 && losses.allSatisfy(\.isFinite))
        #expect(losses.suffix(3).reduce(0, +) < losses.prefix(3).reduce(0, +), "\(losses)")
        let up = try loaded.weights.weight(try #require(loaded.model.names.entry("layer.0.mlp.up")).weight)
        let mask = try #require(up.mask)
        let values = try up.floats()
        #expect((0 ..< values.count).allSatisfy { mask.isKept($0) || values[$0] == 0 })
        #expect(try loaded.weights.weight(try #require(loaded.model.names.entry("layer.1.attn.qkv")).weight).formName == "int4 g16")
        _ = try session.run("calibrate \"\(text.path)\" samples=4 seqlen=16\nreset\nquantize layer.* bits=2 group=16", name: "t.qs")
        let tuned = try #require(try session.run("tune blocks steps=30 lr=1e-3 batch=2", name: "t.qs").record)
        let blocks = try #require(Self.list(tuned["blocks"]))
        #expect(blocks.count == 2)
        #expect(blocks.allSatisfy { ($0.record?["after"]?.number ?? 1) <= ($0.record?["before"]?.number ?? 0) })
        #expect(blocks.contains { ($0.record?["after"]?.number ?? 1) < ($0.record?["before"]?.number ?? 0) })
    }

    /// BERT learns to give the hidden states of the model as loaded: finetune distils by
    /// default (cross entropy and a temperature are refused, saying why), lowering its loss with
    /// quantized layers on their grid; tune blocks lowers each block's error.
    @Test func bertDistilsItsHiddenStates() throws {
        let (folder, text) = try GPTQCommandTests.model("bert")
        defer { try? FileManager.default.removeItem(at: folder) }
        let session = Session(output: { _ in })
        _ = try session.run("load \"\(folder.path)\"\nquantize layer.* bits=3 group=16", name: "t.qs")
        #expect((CommandContractTests.error(session, "finetune \"\(text.path)\" loss=ce steps=2") ?? "").contains("encoder"))
        #expect((CommandContractTests.error(session, "finetune \"\(text.path)\" temperature=2 steps=2") ?? "").contains("temperature"))
        let record = try #require(try session.run("finetune \"\(text.path)\" steps=12 batch=2 seqlen=16 lr=3e-3 warmup=1", name: "t.qs").record)
        #expect(record["loss"] == .string("kd"))
        let losses = try #require(Self.list(record["losses"])).compactMap(\.number)
        #expect(losses.count == 12 && losses.allSatisfy(\.isFinite))
        #expect(losses.suffix(3).reduce(0, +) < losses.prefix(3).reduce(0, +), "\(losses)")
        let loaded = try #require(session.workspace.loaded)
        #expect(try loaded.weights.weight(try #require(loaded.model.names.entry("layer.0.attn.q")).weight).formName == "int3 g16")
        _ = try session.run("calibrate \"\(text.path)\" samples=4 seqlen=16\nreset\nquantize layer.* bits=2 group=16", name: "t.qs")
        let tuned = try #require(try session.run("tune blocks steps=30 lr=1e-3 batch=2", name: "t.qs").record)
        let blocks = try #require(Self.list(tuned["blocks"]))
        #expect(blocks.count == 2)
        #expect(blocks.contains { ($0.record?["after"]?.number ?? 1) < ($0.record?["before"]?.number ?? 0) })
    }

    @Test func ctrlCKeepsTheWeightsOfTheLastWholeStep() throws {
        let (session, folder, text) = try GPTQCommandTests.session(nil)
        defer { try? FileManager.default.removeItem(at: folder) }
        var polls = 0
        session.isCancelled = {
            polls += 1
            return polls > 2
        }
        let record = try #require(try session.run("finetune \"\(text.path)\" steps=10 batch=1 seqlen=16 lr=1e-3", name: "t.qs").record)
        #expect(record["steps"] == .number(2))
        #expect(record["stopped"]?.text?.contains("Ctrl-C") == true)
        #expect(try session.workspace.requireModel().isModified)
    }

    @Test func badInputIsRefusedBeforeAnyWork() throws {
        let (session, folder, text) = try GPTQCommandTests.session(nil)
        defer { try? FileManager.default.removeItem(at: folder) }
        let cases: [(String, String)] = [
            ("finetune \"\(text.path)\" loss=kd steps=2", "nothing to distil"),
            ("finetune \"\(text.path)\" params=layer.99.* steps=2", "params"),
            ("finetune \"\(text.path)\" lr=0", "lr"),
            ("finetune \"\(text.path)\" steps=0", "steps"),
            ("finetune \"\(text.path)\" temperature=2", "temperature is an option of loss=kd"),
            ("finetune \"\(text.path)\" params=scales steps=2", "scales learn only on layers quantized"),
            ("tune blocks", "calibrate"),
            ("tune layers", "blocks"),
        ]
        for (command, expected) in cases {
            let message = try #require(CommandContractTests.error(session, command), "\(command)")
            #expect(message.contains(expected), "\(command): \(message)")
        }
        #expect(try session.workspace.requireModel().isModified == false)
        _ = try session.run("calibrate \"\(text.path)\" samples=2 seqlen=16", name: "t.qs")
        let unchanged = try #require(CommandContractTests.error(session, "tune blocks"))
        #expect(unchanged.contains("as loaded"))
    }
}
