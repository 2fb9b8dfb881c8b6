import Foundation
import QSTestSupport
import Testing
@testable import QSEngine

/// The prediction probe against logits computed in full, the bit allocation against every plan
/// there is, and the planned size against the packed one.
@Suite struct SensitivityTests {
    static func model(_ name: String = "llama") throws -> CausalLanguageModel {
        let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("arch/\(name)")
        return try #require(try ModelLoader.model(for: try Checkpoint.open(folder.path)) as? CausalLanguageModel)
    }

    static let windows = [(0 ..< 24).map { ($0 * 37 + 11) % 96 }, (0 ..< 17).map { ($0 * 53 + 5) % 96 }, (0 ..< 20).map { ($0 * 29 + 3) % 96 }]

    /// Mean KL(reference ‖ now) per scored row and the mean NLL, from full logits in double
    /// precision: the probe's sums computed the plain way.
    static func direct(_ model: CausalLanguageModel, reference: [Activations]) throws -> (kld: Double, nll: Double, tokens: Int) {
        var kld = 0.0
        var nll = 0.0
        var tokens = 0
        for (w, window) in windows.enumerated() {
            let logits = try model.forward(window)
            for row in 0 ..< window.count - 1 {
                let p = QSTestSupport.logSoftmax(reference[w], row: row)
                let q = QSTestSupport.logSoftmax(logits, row: row)
                for i in p.indices { kld += Foundation.exp(p[i]) * (p[i] - q[i]) }
                nll -= q[window[row + 1]]
                tokens += 1
            }
        }
        return (kld / Double(tokens), nll / Double(tokens), tokens)
    }

    @Test(arguments: ["llama", "gpt2"])
    func probeMeasuresWhatFullLogitsGive(name: String) throws {
        let model = try Self.model(name)
        let store = model.weights
        let reference = try Self.windows.map { try model.forward($0) }
        let probe = try PredictionProbe(model: model, windows: Self.windows)
        let blocks = model.config.numHiddenLayers
        // Unchanged, from any start: no divergence, the same perplexity.
        for start in [nil, 0, blocks] as [Int?] {
            let same = try probe.measure(from: start)
            #expect(abs(same.meanDivergence) < 1e-6, "from \(String(describing: start)): \(same.meanDivergence)")
            #expect(same.nllSum == same.referenceNLLSum || abs(same.perplexity / same.referencePerplexity - 1) < 1e-6)
        }
        let plain = try Self.direct(model, reference: reference)
        #expect(abs(log(try probe.measure(from: nil).referencePerplexity) - plain.nll) < 1e-5)
        // A change in the last block, measured from that block, from the start, and in full.
        let before = store.snapshot()
        let entry = try #require(model.names.entry("layer.\(blocks - 1).mlp.down"))
        let start = try ModelQuantizer.startingValues(store, entry.weight)
        try store.set(entry.weight, try ModelQuantizer.roundedToNearest(start, entry, scheme: QuantizationScheme(bits: 3, symmetric: true, granularity: .group(16))))
        let fromBlock = try probe.measure(from: blocks - 1)
        let fromStart = try probe.measure(from: nil)
        let full = try Self.direct(model, reference: reference)
        #expect(fromBlock.tokens == full.tokens && fromBlock.tokens == Self.windows.reduce(0) { $0 + $1.count - 1 })
        #expect(full.kld > 1e-5)
        #expect(abs(fromBlock.meanDivergence - full.kld) <= 1e-4 * full.kld, "\(fromBlock.meanDivergence) against \(full.kld)")
        #expect(abs(fromStart.meanDivergence - fromBlock.meanDivergence) <= 1e-5 * full.kld)
        #expect(abs(log(fromBlock.perplexity) - full.nll) < 1e-5)
        store.restore(before)
    }

    /// An encoder's damage: the mean 1 − cosine of its output rows against the reference's,
    /// every row scored, from the block a change starts in as from the embedding.
    @Test func probeMeasuresAnEncodersOutputDirections() throws {
        let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("arch/bert")
        let model = try #require(try ModelLoader.model(for: try Checkpoint.open(folder.path)) as? BERTModel)
        let store = model.weights
        let reference = try Self.windows.map { try model.encode($0) }
        let probe = try PredictionProbe(model: model, windows: Self.windows)
        #expect(probe.tokens == Self.windows.reduce(0) { $0 + $1.count })
        let blocks = model.config.numHiddenLayers
        #expect(abs(try probe.measure(from: nil).meanDivergence) < 1e-6)
        let before = store.snapshot()
        let entry = try #require(model.names.entry("layer.\(blocks - 1).attn.v"))
        let start = try ModelQuantizer.startingValues(store, entry.weight)
        try store.set(entry.weight, try ModelQuantizer.roundedToNearest(start, entry, scheme: QuantizationScheme(bits: 2, symmetric: true, granularity: .group(16))))
        var direct = 0.0
        var rows = 0
        for (w, window) in Self.windows.enumerated() {
            let now = try model.encode(window)
            for row in 0 ..< now.rows {
                let a = (0 ..< now.cols).map { Double(reference[w].data[row * now.cols + $0]) }
                let b = (0 ..< now.cols).map { Double(now.data[row * now.cols + $0]) }
                let dot = zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
                direct += 1 - dot / (a.reduce(0) { $0 + $1 * $1 } * b.reduce(0) { $0 + $1 * $1 }).squareRoot()
                rows += 1
            }
        }
        direct /= Double(rows)
        let fromBlock = try probe.measure(from: blocks - 1)
        let fromStart = try probe.measure(from: nil)
        #expect(direct > 1e-6)
        #expect(abs(fromBlock.meanDivergence - direct) <= 1e-3 * direct, "\(fromBlock.meanDivergence) against \(direct)")
        #expect(abs(fromStart.meanDivergence - fromBlock.meanDivergence) <= 1e-4 * direct)
        #expect(fromBlock.nllSum == 0 && fromBlock.referenceNLLSum == 0)
        store.restore(before)
    }

    @Test func sensitivityPutsTheWeightsBackAfterEveryChangeAndOnCancel() throws {
        let model = try Self.model()
        let store = model.weights
        let scheme = QuantizationScheme(bits: 2, symmetric: true, granularity: .group(16))
        let entries = model.names.entries.filter { if case .linear = $0.kind { true } else { false } }
        let changes = try entries.map { entry in
            Sensitivity.Change(
                name: entry.canonical,
                weights: [(entry.weight, try ModelQuantizer.roundedToNearest(try ModelQuantizer.startingValues(store, entry.weight), entry, scheme: scheme))],
                firstBlock: Sensitivity.firstBlock(of: [entry], blocks: model.config.numHiddenLayers))
        }
        // Windows measured in groups (a budget of about one window) add up to one group's sums.
        let together = try Sensitivity.measure(model, changes: changes, windows: Self.windows)
        let grouped = try Sensitivity.measure(
            model, changes: changes, windows: Self.windows, probeBudgetBytes: 24 * PredictionProbe.bytesPerToken(model.config))
        #expect(!store.isModified)
        for (a, b) in zip(together, grouped) {
            #expect(a.tokens == b.tokens && abs(a.divergenceSum - b.divergenceSum) <= 1e-6 * max(a.divergenceSum, 1e-9))
            #expect(a.meanDivergence > 0)
        }
        var polls = 0
        #expect(throws: EngineError.self) {
            try Sensitivity.measure(model, changes: changes, windows: Self.windows, isCancelled: {
                polls += 1
                return polls > 40
            })
        }
        #expect(!store.isModified)
    }

    @Test func firstBlockOfAChange() throws {
        let model = try Self.model()
        let names = model.names
        let blocks = model.config.numHiddenLayers
        func first(_ canonical: [String]) throws -> Int? {
            Sensitivity.firstBlock(of: try canonical.map { try #require(names.entry($0)) }, blocks: blocks)
        }
        #expect(try first(["layer.1.attn.q", "layer.0.mlp.up"]) == 0)
        #expect(try first(["layer.1.mlp.down"]) == 1)
        #expect(try first(["head"]) == blocks)
        #expect(try first(["layer.1.attn.q", "embed"]) == nil)
    }

    /// The plan is the best of all plans that fit (every plan tried), never over the budget,
    /// also with coarse cells; nil when the smallest options do not fit.
    @Test func bitAllocationIsOptimalAndFits() {
        var generator = TestGenerator(seed: 7)
        for trial in 0 ..< 200 {
            let layers = (0 ..< 1 + trial % 5).map { _ in
                (0 ..< 1 + Int(generator.next() % 4)).map { _ in
                    BitAllocation.Option(bytes: 8 * (1 + Int(generator.next() % 40)), damage: Double(generator.next() % 1000) / 100)
                }.sorted { $0.bytes < $1.bytes }
            }
            let least = layers.reduce(0) { $0 + $1.map(\.bytes).min()! }
            let most = layers.reduce(0) { $0 + $1.map(\.bytes).max()! }
            let budget = least + Int(generator.next() % UInt64(most - least + 8))
            // Every plan, by counting in mixed radix.
            var best = Double.infinity
            var plan = [Int](repeating: 0, count: layers.count)
            while true {
                let bytes = zip(layers, plan).reduce(0) { $0 + $1.0[$1.1].bytes }
                if bytes <= budget { best = min(best, zip(layers, plan).reduce(0) { $0 + $1.0[$1.1].damage }) }
                var l = 0
                while l < layers.count, plan[l] == layers[l].count - 1 { plan[l] = 0; l += 1 }
                if l == layers.count { break }
                plan[l] += 1
            }
            for cells in [1 << 17, 3] {
                let chosen = BitAllocation.choose(layers, budget: budget, maxCells: cells)!
                let bytes = zip(layers, chosen).reduce(0) { $0 + $1.0[$1.1].bytes }
                let damage = zip(layers, chosen).reduce(0) { $0 + $1.0[$1.1].damage }
                #expect(bytes <= budget, "trial \(trial), \(cells) cells")
                if cells > 3 { #expect(abs(damage - best) < 1e-9, "trial \(trial): \(damage) against the best \(best)") }
            }
            #expect(BitAllocation.choose(layers, budget: least - 1) == nil)
        }
    }

    /// The size a scheme plans for is the size round-to-nearest packs.
    @Test func plannedBytesAreThePackedBytes() throws {
        let rows = 12
        let columns = 40
        let values = (0 ..< rows * columns).map { Float(sin(Double($0) * 0.7)) }
        for bits in 1 ... 8 {
            for symmetric in [true, false] where symmetric || bits > 1 {
                for granularity in [PackedWeight.Granularity.group(16), .group(64), .group(8), .channel, .tensor] {
                    let scheme = QuantizationScheme(bits: bits, symmetric: symmetric, granularity: granularity)
                    let packed = try RoundToNearest.quantize(values, rows: rows, columns: columns, scheme: scheme)
                    #expect(scheme.byteCount(rows: rows, columns: columns) == packed.byteCount, "\(scheme)")
                }
            }
        }
    }
}
