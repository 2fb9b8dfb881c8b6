import Foundation
import QSTestSupport
import Testing
@testable import QSEngine
@testable import QSInterpreter
@testable import QSLanguage

/// `prune` on the tiny Llama with its WordPiece tokenizer: the sparsity asked for reached
/// exactly (globally, per layer, per row, per N:M group), masks kept through quantization,
/// snapshots and restores, SparseGPT's joint quantization, Ctrl-C leaving the model as it was,
/// and each bad input at its option before any work.
@Suite struct PruneCommandTests {
    static func session(_ calibrate: String? = "samples=8 seqlen=32") throws -> (Session, URL, URL) {
        try GPTQCommandTests.session(calibrate)
    }

    /// Each block linear layer's mask (out×in) and values.
    static func masks(_ session: Session) throws -> [(entry: LayerNames.Entry, mask: PruningMask?, values: [Float], rows: Int, columns: Int)] {
        let loaded = try #require(session.workspace.loaded)
        return try loaded.model.names.entries.filter { $0.kind.isMatrix && $0.canonical.hasPrefix("layer.") }.map { entry in
            let start = try ModelQuantizer.startingValues(loaded.weights, entry.weight)
            let current = try loaded.weights.weight(entry.weight).floats()
            let mask = start.mask
            return (entry, mask, current, start.rows, start.columns)
        }
    }

    @Test func globalAndLocalMagnitudeReachTheSparsityAskedFor() throws {
        let (session, folder, _) = try Self.session(nil)
        defer { try? FileManager.default.removeItem(at: folder) }
        let record = try #require(try session.run("prune global 30%", name: "t.qs").record)
        let layers = try Self.masks(session)
        let total = layers.reduce(0) { $0 + $1.values.count }
        let pruned = layers.reduce(0) { $0 + ($1.mask.map { $0.count - $0.keptCount } ?? 0) }
        #expect(pruned == Int((Double(total) * 0.3).rounded(.down)))
        #expect(record["pruned"] == .number(Double(pruned)) && record["global"] == .bool(true) && record["layers"] == .number(14))
        // One threshold: every pruned |w| at most every kept |w|.
        let store = try #require(session.workspace.loaded?.weights)
        let prunedMax = try layers.flatMap { layer in
            try store.original(layer.entry.weight).floats().enumerated().filter { layer.mask?.isKept($0.offset) == false }.map { abs($0.element) }
        }.max() ?? 0
        let keptMin = layers.flatMap { layer in layer.values.enumerated().filter { layer.mask?.isKept($0.offset) != false }.map { abs($0.element) } }.min() ?? 0
        #expect(prunedMax <= keptMin)
        // Local: every layer at 50% (its earlier 30% counted), never un-pruning.
        let before = try Self.masks(session)
        _ = try session.run("prune layer.* 50%", name: "t.qs")
        for (layer, earlier) in zip(try Self.masks(session), before) {
            let mask = try #require(layer.mask)
            let wanted = Int((Double(mask.count) * 0.5).rounded(.down))
            let earlierPruned = earlier.mask.map { $0.count - $0.keptCount } ?? 0
            #expect(mask.count - mask.keptCount == max(wanted, earlierPruned), "\(layer.entry.canonical)")
            #expect((0 ..< mask.count).allSatisfy { earlier.mask?.isKept($0) != false || !mask.isKept($0) })
            #expect(mask.requested == "50%")
        }
        let report = try #require(try session.run("report sparsity", name: "t.qs").record)
        #expect(report["total"]?.record?["sparsity"]?.number.map { $0 >= 0.5 } == true)
    }

    /// Pruned weights stay exactly zero through RTN (both grids) and GPTQ, snapshots and restores.
    @Test func masksPersistThroughQuantizationAndSnapshots() throws {
        let (session, folder, _) = try Self.session()
        defer { try? FileManager.default.removeItem(at: folder) }
        _ = try session.run("prune layer.* 2:4\nsnapshot pruned", name: "t.qs")
        let pruned = try Self.masks(session)
        for quantize in ["quantize layer.* bits=4 group=16 asym", "quantize layer.* bits=3 group=16", "quantize layer.* bits=4 group=16 method=gptq"] {
            _ = try session.run("restore pruned\n" + quantize, name: "t.qs")
            for (layer, before) in zip(try Self.masks(session), pruned) {
                let mask = try #require(layer.mask)
                #expect(mask == before.mask!, "\(quantize): \(layer.entry.canonical)")
                #expect(try session.workspace.loaded!.weights.weight(layer.entry.weight).isQuantized)
                let zeroed = layer.values.enumerated().filter { !mask.isKept($0.offset) }
                #expect(!zeroed.isEmpty && zeroed.allSatisfy { $0.element == 0 }, "\(quantize): \(layer.entry.canonical)")
                for r in 0 ..< layer.rows {
                    for g in stride(from: 0, to: layer.columns, by: 4) {
                        #expect((g ..< g + 4).filter { mask.isKept(r * layer.columns + $0) }.count == 2)
                    }
                }
            }
        }
        _ = try session.run("reset", name: "t.qs")
        #expect(try Self.masks(session).allSatisfy { $0.mask == nil })
        _ = try session.run("restore pruned", name: "t.qs")
        #expect(try Self.masks(session).map(\.mask) == pruned.map(\.mask))
    }

    /// Wanda: every row at the share asked for, or every 4 at 2; SparseGPT: every block of
    /// columns at the share, the kept weights moved, and with bits the layers packed with their masks.
    @Test func wandaAndSparseGPTOnAModel() throws {
        let (session, folder, _) = try Self.session()
        defer { try? FileManager.default.removeItem(at: folder) }
        let original = try Self.masks(session)
        for source in ["prune layer.* 50% method=wanda", "prune layer.* 2:4 method=wanda", "prune layer.* 50% method=sparsegpt block=16", "prune layer.* 2:4 method=sparsegpt"] {
            let record = try #require(try session.run("reset\n" + source, name: "t.qs").record)
            #expect(record["sparsity"]?.number == 0.5, "\(source)")
            for (layer, before) in zip(try Self.masks(session), original) {
                let mask = try #require(layer.mask, "\(source)")
                for r in 0 ..< layer.rows {
                    let row = (0 ..< layer.columns).filter { !mask.isKept(r * layer.columns + $0) }.count
                    if source.contains("2:4") {
                        for g in stride(from: 0, to: layer.columns, by: 4) {
                            #expect((g ..< g + 4).filter { mask.isKept(r * layer.columns + $0) }.count == 2, "\(source)")
                        }
                    } else if source.contains("wanda") {
                        #expect(row == layer.columns / 2, "\(source): \(layer.entry.canonical) row \(r)")
                    }
                }
                let kept = (0 ..< mask.count).filter { mask.isKept($0) }
                let moved = kept.contains { layer.values[$0] != before.values[$0] }
                #expect(moved == source.contains("sparsegpt"), "\(source): \(layer.entry.canonical)")
            }
        }
        let record = try #require(try session.run("reset\nprune layer.* 50% method=sparsegpt bits=4 group=16 asym", name: "t.qs").record)
        #expect(record["scheme"] == .string("int4 g16 asym"))
        for layer in try Self.masks(session) {
            let weight = try session.workspace.loaded!.weights.weight(layer.entry.weight)
            #expect(weight.formName == "int4 g16 asym" && weight.mask != nil)
            #expect(layer.values.enumerated().allSatisfy { layer.mask!.isKept($0.offset) || $0.element == 0 })
        }
    }

    /// Ctrl-C at any point of a SparseGPT or Wanda run leaves the model as it was.
    @Test(arguments: ["prune layer.* 50% method=sparsegpt", "prune layer.* 2:4 method=wanda"])
    func cancelledPruningLeavesTheModelAsItWas(source: String) throws {
        let (session, folder, _) = try Self.session()
        defer { try? FileManager.default.removeItem(at: folder) }
        final class Counter: @unchecked Sendable { var polls = 0; var stopAt = Int.max }
        let counter = Counter()
        session.isCancelled = {
            counter.polls += 1
            return counter.polls >= counter.stopAt
        }
        _ = try session.run(source + "\nreset", name: "t.qs")
        let total = counter.polls
        #expect(total > 10)
        for stop in [1, total / 2, total - 1] {
            counter.polls = 0
            counter.stopAt = stop
            let error = try #require(CommandContractTests.error(session, source), "stopped at poll \(stop)")
            #expect(error.contains("cancelled"), "\(error)")
            #expect(session.workspace.loaded?.isModified == false)
        }
    }

    @Test(arguments: [
        ("prune layer.* 150%", "t.qs:1:15:", "give 0% to 100%"),
        ("prune layer.* 4:4", "t.qs:1:15:", "N must be below M"),
        ("prune layer.* 3:5", "t.qs:1:15:", "which 5 does not divide"),
        ("prune layer.* fast", "t.qs:1:15:", "expected a share"),
        ("prune layer.9.* 50%", "t.qs:1:7:", "matches no"),
        ("prune layer.* 50% exclude=layer.*", "t.qs:1:19:", "leaves no layer"),
        ("prune global 2:4", "t.qs:1:14:", "global takes a share"),
        ("prune global 50% method=wanda", "t.qs:1:18:", "one magnitude threshold"),
        ("prune layer.* 50% bits=4", "t.qs:1:19:", "option of method=sparsegpt"),
        ("prune layer.* 50% method=sparsegpt group=16", "t.qs:1:36:", "add bits=4"),
        ("prune embed 50% method=wanda", "t.qs:1:7:", "prune embed with method=magnitude"),
        ("prune layer.* 50% method=wanda", "t.qs:1:19:", "calibrate TEXT"),
        ("prune layer.* 50% method=sparsegpt bits=9", "t.qs:1:41:", "out of range"),
    ])
    func badInputIsADiagnosticAtItsOption(source: String, place: String, phrase: String) throws {
        let (session, folder, _) = try Self.session(phrase == "calibrate TEXT" || !source.contains("method=") ? nil : "samples=4 seqlen=32")
        defer { try? FileManager.default.removeItem(at: folder) }
        let polls = PollCounter()
        session.isCancelled = { polls.count += 1; return false }
        let error = try #require(CommandContractTests.error(session, source), "\(source)")
        #expect(error.hasPrefix(place), "\(error)")
        #expect(error.contains(phrase), "\(error)")
        #expect(session.workspace.loaded?.isModified == false)
        #expect(polls.count == 0, "\(source): \(polls.count) polls")
    }

    /// Heads and neurons removed: the tensors shrink, the record says what, evaluation and
    /// generation run on the smaller model, snapshots and reset bring the shapes back.
    @Test func structuredPruningShrinksTheModel() throws {
        let (session, folder, text) = try Self.session()
        defer { try? FileManager.default.removeItem(at: folder) }
        let loaded = try #require(session.workspace.loaded)
        let params = loaded.parameterCount
        let dense = try #require(try session.run("eval ppl \"\(text.path)\" tokens=64 ctx=32", name: "t.qs").record?["ppl"]?.number)
        _ = try session.run("snapshot dense", name: "t.qs")
        let record = try #require(try session.run("prune layer.* neurons=25% uniform", name: "t.qs").record)
        #expect(record["removed"] == .number(32) && record["global"] == .bool(false))
        for block in 0 ..< 2 {
            #expect(try loaded.weights.weight(loaded.model.names.entry("layer.\(block).mlp.up")!.weight).shape == [48, 32])
            #expect(try loaded.weights.weight(loaded.model.names.entry("layer.\(block).mlp.down")!.weight).outFeatures == 32)
        }
        let heads = try #require(try session.run("prune layer.* heads=25% by=activation", name: "t.qs").record)
        // 25% of the 4 key/value groups: one group, its 2 query heads (q, k, v rows and o columns).
        #expect(heads["removed"] == .number(2))
        #expect(loaded.parameterCount < params && loaded.parameterCount == params - 2 * 16 * 3 * 32 - (16 + 8 + 8 + 16) * 32)
        let smaller = try #require(try session.run("eval ppl \"\(text.path)\" tokens=64 ctx=32", name: "t.qs").record?["ppl"]?.number)
        #expect(smaller.isFinite && smaller != dense)
        _ = try session.run("generate \"abc\" tokens=4", name: "t.qs")
        _ = try session.run("restore dense", name: "t.qs")
        #expect(loaded.parameterCount == params)
        _ = try session.run("prune layer.* neurons=50%\nreset", name: "t.qs")
        #expect(loaded.parameterCount == params && !loaded.isModified)
    }

    @Test(arguments: [
        ("prune layer.* heads=100% uniform", "t.qs:1:15:", "removes every head"),
        ("prune layer.* heads=100%", "t.qs:1:15:", "would leave a block with none"),
        ("prune layer.* neurons=25% 2:4", "t.qs:1:27:", "does not go with neurons"),
        ("prune layer.* heads=10% uniform", "t.qs:1:15:", "removes no whole key/value group"),
        ("prune layer.* neurons=30% by=activation", "t.qs:1:27:", "calibrate TEXT"),
        ("prune layer.* 50% uniform", "t.qs:1:19:", "option of heads= and neurons="),
        ("prune global neurons=30%", "t.qs:1:7:", "name the layers"),
    ])
    func badStructuredInputIsADiagnosticAtItsOption(source: String, place: String, phrase: String) throws {
        let (session, folder, _) = try Self.session(nil)
        defer { try? FileManager.default.removeItem(at: folder) }
        let error = try #require(CommandContractTests.error(session, source), "\(source)")
        #expect(error.hasPrefix(place), "\(error)")
        #expect(error.contains(phrase), "\(error)")
        #expect(session.workspace.loaded?.isModified == false)
    }

    /// The pruning recipes of stdlib/prune.qs on every architecture's tiny model.
    @Test(arguments: ["llama", "qwen2", "mistral", "gpt2", "bert"])
    func stdlibRecipesRunOnEveryArchitecture(name: String) throws {
        let (folder, text) = try GPTQCommandTests.model(name)
        defer { try? FileManager.default.removeItem(at: folder) }
        let stdlib = DocsAndRecipesTests.root.appendingPathComponent("stdlib").path
        let session = Session(output: { _ in }, libraryDirectory: stdlib)
        _ = try session.run("load \"\(folder.path)\"\nuse prune", name: "t.qs")
        let loaded = try #require(session.workspace.loaded)
        let options = "text=\"\(text.path)\" samples=4 seqlen=16"
        for (call, sparsity) in [("wanda_50", 0.5), ("sparsegpt_2_4", 0.5), ("neurons_25_int4", 0.0)] {
            let record = try #require(try session.run("reset\n\(call) \(options)\(call.hasSuffix("int4") ? " group=16" : "")", name: "t.qs").record, "\(name) \(call)")
            if sparsity > 0 {
                #expect(record["sparsity"]?.number == sparsity, "\(name) \(call)")
            } else {
                let up = try loaded.weights.weight(try #require(loaded.model.names.entry("layer.0.mlp.up")).weight)
                #expect(up.outFeatures == loaded.config.intermediateSize * 3 / 4 && up.formName == "int4 g16", "\(name): \(up.formName)")
            }
        }
    }

    /// GPT-2's fused q/k/v loses whole heads from each third, and AWQ's smoothing of v into o
    /// (the last third's rows) follows the smaller projection; SmoothQuant too.
    @Test func gpt2HeadsThenSmoothing() throws {
        let (folder, text) = try GPTQCommandTests.model("gpt2")
        defer { try? FileManager.default.removeItem(at: folder) }
        let session = Session(output: { _ in })
        _ = try session.run("load \"\(folder.path)\"\ncalibrate \"\(text.path)\" samples=4 seqlen=16", name: "t.qs")
        let loaded = try #require(session.workspace.loaded)
        let qkv = try #require(loaded.model.names.entry("layer.0.attn.qkv"))
        let before = try loaded.weights.weight(qkv.weight).outFeatures
        _ = try session.run("prune layer.* heads=50% uniform", name: "t.qs")
        #expect(try loaded.weights.weight(qkv.weight).outFeatures == before / 2)
        for quantize in ["quantize layer.* bits=4 group=16 method=awq", "quantize layer.* bits=8 group=channel act_bits=8 smooth=0.5"] {
            let record = try #require(try session.run(quantize, name: "t.qs").record, "\(quantize)")
            #expect((record["smoothed"]?.number ?? 0) > 0, "\(quantize)")
            let ppl = try #require(try session.run("eval ppl \"\(text.path)\" tokens=48 ctx=16", name: "t.qs").record?["ppl"]?.number)
            #expect(ppl.isFinite, "\(quantize)")
        }
    }

    @Test func aQuantizedLayerIsRefused() throws {
        let (session, folder, _) = try Self.session(nil)
        defer { try? FileManager.default.removeItem(at: folder) }
        _ = try session.run("quantize layer.0.attn.q bits=4 group=16", name: "t.qs")
        let error = try #require(CommandContractTests.error(session, "prune layer.* 50%"))
        #expect(error.contains("layer.0.attn.q is quantized") && error.contains("prune before quantizing"), "\(error)")
    }

    @Test func recordsHaveOnlyDeclaredFields() throws {
        let (session, results) = CommandContractTests.session()
        let (folder, text) = try GPTQCommandTests.model()
        defer { try? FileManager.default.removeItem(at: folder) }
        _ = try session.run("""
            load "\(folder.path)"
            calibrate "\(text.path)" samples=4 seqlen=32
            prune layer.* 50% method=sparsegpt bits=4 group=16
            report sparsity
            """, name: "t.qs")
        CommandContractTests.checkDeclared(results, in: session)
        #expect(Set(results.records.map(\.command)).isSuperset(of: ["prune", "report"]))
    }
}
