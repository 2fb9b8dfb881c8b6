import Foundation
import QSTestSupport
import Testing
@testable import QSEngine

/// Pruning against references (scripts/reference/make_pruning_fixtures.py): global and local
/// magnitude masks equal to torch.nn.utils.prune's L1 pruning, Wanda's masks, and SparseGPT's
/// masks and updated (and jointly quantized) weights from the paper's algorithm in PyTorch;
/// exact sparsity, N:M verified group by group, and the k-th selection against a sort.
@Suite struct PruningTests {
    struct Layer: Decodable {
        var rows: Int
        var columns: Int
        var W: [Float]
        var kept: [Int]
    }

    struct MagnitudeCase: Decodable, CustomStringConvertible {
        var name: String
        var amount: Double
        var layers: [Layer]
        var description: String { name }
    }

    struct CalibratedCase: Decodable, CustomStringConvertible {
        var name: String
        var rows: Int
        var columns: Int
        var sparsity: Double
        var keep: Int
        var group: Int
        var W: [Float]
        var X: [Float]
        var kept: [Int]
        var pruned: [Double]?
        var updated: [Double]?
        var block: Int?
        var damp: Double?
        var bits: Int?
        var sym: Bool?
        var qgroup: Int?
        var scales: [Double]?
        var description: String { name }

        var amount: PruningAmount { group > 0 ? .nOfM(keep: keep, group: group) : .fraction(sparsity) }
        var inputs: Activations { Activations(rows: X.count / columns, cols: columns, data: X) }
    }

    struct File: Decodable {
        var global: [MagnitudeCase]
        var local: [MagnitudeCase]
        var wanda: [CalibratedCase]
        var sparsegpt: [CalibratedCase]
    }

    static let file: File = {
        let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("pruning/cases.json")
        return try! JSONDecoder().decode(File.self, from: Data(contentsOf: url))
    }()

    static func kept(_ mask: PruningMask) -> [Int] { (0 ..< mask.count).map { mask.isKept($0) ? 1 : 0 } }

    @Test(arguments: file.global)
    func globalMagnitudeEqualsTorchGlobalUnstructured(_ c: MagnitudeCase) throws {
        let masks = Pruner.globalMasks(magnitudes: c.layers.map { $0.W.map { abs($0) } }, fraction: c.amount)
        for (mask, layer) in zip(masks, c.layers) { #expect(Self.kept(mask) == layer.kept, "\(c.name)") }
        let total = c.layers.reduce(0) { $0 + $1.W.count }
        #expect(masks.reduce(0) { $0 + $1.count - $1.keptCount } == Int((Double(total) * c.amount).rounded(.down)))
    }

    @Test(arguments: file.local)
    func localMagnitudeEqualsTorchL1Unstructured(_ c: MagnitudeCase) throws {
        for layer in c.layers {
            let mask = Pruner.mask(scores: layer.W.map { abs($0) }, rows: layer.rows, columns: layer.columns, amount: .fraction(c.amount), perRow: false)
            #expect(Self.kept(mask) == layer.kept, "\(c.name) \(layer.rows)×\(layer.columns)")
            #expect(mask.count - mask.keptCount == Pruner.prunedCount(layer.W.count, c.amount))
        }
    }

    @Test(arguments: file.wanda)
    func wandaMatchesThePaper(_ c: CalibratedCase) throws {
        let statistics = HessianAccumulator(size: c.columns, gram: false)
        statistics.add(c.inputs)
        let scores = Pruner.wandaScores(c.W, rows: c.rows, columns: c.columns, squareSums: statistics.squareSums)
        let mask = Pruner.mask(scores: scores, rows: c.rows, columns: c.columns, amount: c.amount, perRow: true)
        #expect(Self.kept(mask) == c.kept, "\(c.name)")
        Self.checkSparsity(mask, c)
        let pruned = try Weight(dense: c.W, shape: [c.rows, c.columns], mask: mask).floats()
        #expect(pruned.map(Double.init) == c.pruned, "\(c.name)")
    }

    @Test(arguments: file.sparsegpt)
    func sparseGPTMatchesThePaper(_ c: CalibratedCase) throws {
        let hessian = HessianAccumulator(size: c.columns)
        hessian.add(c.inputs)
        let bits = c.bits ?? 0
        let scheme = bits > 0
            ? QuantizationScheme(bits: bits, symmetric: c.sym ?? true, granularity: (c.qgroup ?? 0) > 0 ? .group(c.qgroup!) : .channel, clip: .none, scaleType: .f32)
            : nil
        let selection: GPTQ.MaskSelection = c.group > 0 ? .nOfM(keep: c.keep, group: c.group) : .fraction(c.sparsity)
        let solution = try GPTQ.solve(
            c.W, rows: c.rows, columns: c.columns, hessian: hessian, scheme: scheme,
            options: GPTQ.Options(damp: c.damp ?? 0.01, blockSize: c.block ?? 128), selection: selection)
        let mask = try #require(solution.mask)
        #expect(Self.kept(mask) == c.kept, "\(c.name)")
        let values: [Float]
        if let packed = solution.packed {
            values = try Weight(packed: packed, mask: mask).floats()
            if let scales = c.scales {
                for (a, b) in zip(packed.scales, scales) { #expect(abs(Double(a) - b) <= 1e-5 * abs(b), "\(c.name): scale") }
            }
        } else {
            values = try #require(solution.values)
        }
        let updated = try #require(c.updated)
        var difference = 0.0
        var norm = 0.0
        for (a, b) in zip(values, updated) {
            difference += (Double(a) - b) * (Double(a) - b)
            norm += b * b
        }
        #expect((difference / norm).squareRoot() < 1e-4, "\(c.name): relative difference \((difference / norm).squareRoot())")
        for index in values.indices where !mask.isKept(index) { #expect(values[index] == 0) }
        if c.group > 0 { Self.checkSparsity(mask, c) }
        // Every block of columns pruned to the share asked for, exactly.
        if c.group == 0, let block = c.block {
            for start in stride(from: 0, to: c.columns, by: block) {
                let end = min(c.columns, start + block)
                var pruned = 0
                for r in 0 ..< c.rows { for j in start ..< end where !mask.isKept(r * c.columns + j) { pruned += 1 } }
                #expect(pruned == Pruner.prunedCount(c.rows * (end - start), c.sparsity), "\(c.name): block at \(start)")
            }
        }
    }

    /// The sparsity a mask must have: per row for a share, per group for N:M.
    static func checkSparsity(_ mask: PruningMask, _ c: CalibratedCase) {
        for r in 0 ..< c.rows {
            if c.group > 0 {
                for start in stride(from: 0, to: c.columns, by: c.group) {
                    let kept = (start ..< start + c.group).filter { mask.isKept(r * c.columns + $0) }.count
                    #expect(kept == c.keep, "\(c.name): row \(r) group at \(start) keeps \(kept)")
                }
            } else {
                let pruned = (0 ..< c.columns).filter { !mask.isKept(r * c.columns + $0) }.count
                #expect(pruned == Pruner.prunedCount(c.columns, c.sparsity), "\(c.name): row \(r)")
            }
        }
    }

    /// The radix selection prunes exactly k, the k smallest (ties by order), over several
    /// buffers, with zeros, repeats, infinities and NaN among the scores.
    @Test func selectionPrunesExactlyTheSmallest() throws {
        var generator = SeededGenerator(seed: 5)
        let buffers: [[Float]] = (0 ..< 3).map { b in
            (0 ..< 200 + 37 * b).map { i in
                switch i % 17 {
                case 0: 0
                case 1: 1.5
                case 2 where b == 1: .infinity
                case 3 where b == 2: .nan
                default: Float(generator.next() % 1000) / 7
                }
            }
        }
        let all = buffers.flatMap { $0 }
        for count in [0, 1, 13, all.count / 2, all.count - 5, all.count] {
            var masks = buffers.map { PruningMask(keepingAll: $0.count) }
            let threshold = buffers[0].withUnsafeBufferPointer { a in
                buffers[1].withUnsafeBufferPointer { b in
                    buffers[2].withUnsafeBufferPointer { c -> Selection.Threshold? in
                        let t = Selection.threshold(pruning: count, of: [a, b, c])
                        if let t {
                            var left = t.equalPruned
                            Selection.prune(a, below: t, equalLeft: &left, into: &masks[0])
                            Selection.prune(b, below: t, equalLeft: &left, into: &masks[1])
                            Selection.prune(c, below: t, equalLeft: &left, into: &masks[2])
                            #expect(left == 0)
                        }
                        return t
                    }
                }
            }
            #expect((threshold == nil) == (count == 0))
            let pruned = zip(buffers, masks).flatMap { buffer, mask in buffer.indices.filter { !mask.isKept($0) }.map { buffer[$0] } }
            #expect(pruned.count == count)
            // The pruned are the `count` smallest, NaN above everything.
            let order = all.map { $0.isNaN ? Float.greatestFiniteMagnitude * 2 : $0 }.sorted()
            let prunedSorted = pruned.map { $0.isNaN ? Float.greatestFiniteMagnitude * 2 : $0 }.sorted()
            #expect(prunedSorted == Array(order.prefix(count)))
        }
    }

    /// Magnitude pruning in a store: exact sparsity per layer, earlier pruning kept, a layer in
    /// the in×out layout (GPT-2's Conv1D) pruned along its input dimension, quantized layers refused.
    @Test func magnitudePruningInAStore() throws {
        for name in ["llama", "gpt2"] {
            let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("arch/\(name)")
            let model = try ModelLoader.model(for: try Checkpoint.open(folder.path))
            let store = model.weights
            let entries = model.names.entries.filter { if case .linear = $0.kind { $0.canonical.hasPrefix("layer.") } else { false } }
            let first = try Pruner.magnitude(store, entries, amount: .fraction(0.3), global: false)
            #expect(first.allSatisfy { $0.pruned == Pruner.prunedCount($0.params, 0.3) }, "\(name)")
            let second = try Pruner.magnitude(store, entries, amount: .nOfM(keep: 2, group: 4), global: false)
            for (entry, result) in zip(entries, second) {
                let start = try ModelQuantizer.startingValues(store, entry.weight)
                let mask = try #require(start.mask)
                #expect(result.pruned == mask.count - mask.keptCount)
                // 2:4 along the input dimension, and what 30% pruned stays pruned.
                for r in 0 ..< start.rows {
                    for g in stride(from: 0, to: start.columns, by: 4) {
                        #expect((g ..< g + 4).filter { mask.isKept(r * start.columns + $0) }.count <= 2, "\(name) \(entry.canonical)")
                    }
                }
                #expect(Double(result.pruned) >= 0.5 * Double(result.params))
                #expect(start.values.enumerated().allSatisfy { mask.isKept($0.offset) || $0.element == 0 })
            }
            let global = try Pruner.magnitude(store, entries, amount: .fraction(0.8), global: true)
            #expect(global.reduce(0) { $0 + $1.pruned } == Pruner.prunedCount(global.reduce(0) { $0 + $1.params }, 0.8))
            // A quantized layer is refused.
            let entry = entries[0]
            try store.set(entry.weight, try ModelQuantizer.roundedToNearest(try ModelQuantizer.startingValues(store, entry.weight), entry, scheme: QuantizationScheme(bits: 4, symmetric: true, granularity: .group(16))))
            #expect(throws: EngineError.self) { try Pruner.magnitude(store, [entry], amount: .fraction(0.9), global: false) }
        }
    }
}

/// Structured pruning against the dense model with the same units zeroed: the same outputs
/// from smaller tensors, on every architecture that has the unit.
@Suite struct StructuredPruningTests {
    static func model(_ name: String) throws -> BlockModel {
        let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("arch/\(name)")
        return try ModelLoader.model(for: try Checkpoint.open(folder.path))
    }

    static func outputs(_ model: BlockModel) throws -> [Float] {
        let tokens = (0 ..< 12).map { ($0 * 7 + 3) % 50 }
        if let causal = model as? CausalLanguageModel { return try causal.forward(tokens).data }
        return try (model as! BERTModel).encode(tokens).data
    }

    /// Zeroes, in the dense model, the rows (out) and columns (in) a removal takes away.
    static func zero(_ model: BlockModel, _ canonical: String, rows: [Int], columns: [Int]) throws {
        guard let entry = model.names.entry(canonical) else { return }
        let start = try ModelQuantizer.startingValues(model.weights, entry.weight)
        var values = start.values
        for r in rows { for c in 0 ..< start.columns { values[r * start.columns + c] = 0 } }
        for c in columns { for r in 0 ..< start.rows { values[r * start.columns + c] = 0 } }
        try model.weights.set(entry.weight, try Weight(dense: values, shape: [start.rows, start.columns]))
        if entry.hasBias, !rows.isEmpty {
            var bias = try model.weights.floats(entry.bias)
            for r in rows { bias[r] = 0 }
            try model.weights.replace(entry.bias, with: bias)
        }
    }

    @Test(arguments: [("llama", "neurons"), ("llama", "heads"), ("qwen2", "heads"), ("qwen2", "neurons"), ("mistral", "heads"), ("gpt2", "neurons"), ("gpt2", "heads"), ("bert", "heads"), ("bert", "neurons")])
    func removingUnitsEqualsZeroingThem(name: String, unit: String) throws {
        let pruned = try Self.model(name)
        let dense = try Self.model(name)
        let kind: StructuredPruner.Unit = unit == "heads" ? .heads : .neurons
        let blocks = Array(0 ..< pruned.config.numHiddenLayers)
        for uniform in [true, false] {
            pruned.weights.reset()
            dense.weights.reset()
            let plan = try StructuredPruner.plan(pruned, blocks: blocks, unit: kind, fraction: 0.5, ranking: .l1, uniform: uniform)
            #expect(!plan.isEmpty)
            let changes = try StructuredPruner.apply(pruned, plan: plan, unit: kind)
            let headDim = dense.config.headDim
            for (block, removed) in plan {
                let layer = "layer.\(block)."
                let (_, perUnit) = try StructuredPruner.unitCount(dense, block: block, unit: kind)
                if kind == .neurons {
                    try Self.zero(dense, layer + "mlp.gate", rows: removed, columns: [])
                    try Self.zero(dense, layer + "mlp.up", rows: removed, columns: [])
                    try Self.zero(dense, layer + "mlp.down", rows: [], columns: removed)
                } else {
                    let query = removed.flatMap { Array($0 * perUnit * headDim ..< ($0 + 1) * perUnit * headDim) }
                    let kv = removed.flatMap { Array($0 * headDim ..< ($0 + 1) * headDim) }
                    try Self.zero(dense, layer + "attn.q", rows: query, columns: [])
                    try Self.zero(dense, layer + "attn.k", rows: kv, columns: [])
                    try Self.zero(dense, layer + "attn.v", rows: kv, columns: [])
                    try Self.zero(dense, layer + "attn.o", rows: [], columns: query)
                    let width = dense.config.numAttentionHeads * headDim
                    try Self.zero(dense, layer + "attn.qkv", rows: (0 ..< 3).flatMap { third in kv.map { third * width + $0 } }, columns: [])
                }
            }
            if uniform { #expect(Set(changes.map(\.after)).count == 1, "\(name) \(unit)") }
            #expect(changes.allSatisfy { $0.after > 0 && $0.after < $0.before })
            let a = try Self.outputs(pruned)
            let b = try Self.outputs(dense)
            let scale = b.map { abs($0) }.max() ?? 1
            #expect(zip(a, b).allSatisfy { abs($0 - $1) <= 1e-4 * scale }, "\(name) \(unit) uniform=\(uniform)")
            #expect(pruned.weights.parameterCount < dense.weights.parameterCount)
            #expect(pruned.weights.heldBytes < dense.weights.heldBytes)
        }
    }

}
