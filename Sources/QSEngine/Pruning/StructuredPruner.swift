import Foundation

/// Structured pruning: whole MLP neurons (a row of gate and up, a column of down) or whole
/// attention heads (their q, k and v rows and o columns; with grouped-query attention a whole
/// key/value group with its query heads) removed, so that the tensors shrink and the model
/// computes less. The architectures take their sizes from the shapes, so evaluation, generation
/// and bench run on the smaller model.
package enum StructuredPruner {
    package enum Unit: String, Sendable { case neurons, heads }
    package enum Ranking: String, Sendable { case l1, l2, activation }

    /// What was removed from one block.
    package struct BlockChange: Sendable, Equatable {
        package var block: Int
        /// Units before and after (neurons; heads counted as query heads).
        package var before: Int
        package var after: Int
        /// The units removed, by index before.
        package var removed: [Int]
    }

    /// The groups of units a block has: for neurons each intermediate channel alone; for heads
    /// each key/value group (its k and v head with the query heads that read it).
    package static func unitCount(_ model: BlockModel, block: Int, unit: Unit) throws -> (units: Int, headsPerUnit: Int) {
        let store = model.weights
        let names = model.names
        switch unit {
        case .neurons:
            return (try store.weight(names.required("layer.\(block).mlp.up").weight).outFeatures, 1)
        case .heads:
            let headDim = model.config.headDim
            if let qkv = names.entry("layer.\(block).attn.qkv") {
                // GPT-2's fused projection: q, k and v rows side by side, one key/value head per query head.
                return (try store.weight(qkv.weight).outFeatures / 3 / headDim, 1)
            }
            guard let q = names.entry("layer.\(block).attn.q"), let k = names.entry("layer.\(block).attn.k") else {
                throw EngineError(subject: "layer.\(block)", "has no attention projections to remove heads from")
            }
            let heads = try store.weight(q.weight).outFeatures / headDim
            let groups = try store.weight(k.weight).outFeatures / headDim
            return (groups, heads / max(groups, 1))
        }
    }

    /// Scores of every unit of `block` (lower goes first): the L1 or L2 norm of the weights that
    /// carry the unit, or with `activation` the L2 norm of its input to the layer that reads it
    /// (down for a neuron, o for a head) on the calibration tokens times the norm of that
    /// layer's columns for it (the size of what the unit adds to the block's output).
    static func scores(
        _ model: BlockModel, block: Int, unit: Unit, ranking: Ranking, squareSums: [String: [Double]]
    ) throws -> [Double] {
        let store = model.weights
        let layer = "layer.\(block)."
        let (units, perUnit) = try unitCount(model, block: block, unit: unit)
        let headDim = model.config.headDim
        var scores = [Double](repeating: 0, count: units)
        func add(_ canonical: String, rowsOf: (Int) -> Range<Int>?, columnsOf: (Int) -> Range<Int>?) throws {
            guard let entry = model.names.entry(canonical) else { return }
            let m = try Pruner.startingValues(store, entry)
            for u in 0 ..< units {
                var sum = 0.0
                if let rows = rowsOf(u) {
                    for r in rows { for c in 0 ..< m.columns { sum += term(m.values[r * m.columns + c]) } }
                }
                if let columns = columnsOf(u) {
                    for r in 0 ..< m.rows { for c in columns { sum += term(m.values[r * m.columns + c]) } }
                }
                scores[u] += sum
            }
        }
        func term(_ w: Float) -> Double { ranking == .l1 ? Double(abs(w)) : Double(w) * Double(w) }
        let readers: (name: String, columns: (Int) -> Range<Int>)
        switch unit {
        case .neurons:
            readers = (layer + "mlp.down", { $0 ..< $0 + 1 })
            if ranking != .activation {
                try add(layer + "mlp.gate", rowsOf: { $0 ..< $0 + 1 }, columnsOf: { _ in nil })
                try add(layer + "mlp.up", rowsOf: { $0 ..< $0 + 1 }, columnsOf: { _ in nil })
            }
        case .heads:
            let queryRows = perUnit * headDim
            readers = (layer + "attn.o", { $0 * queryRows ..< ($0 + 1) * queryRows })
            if ranking != .activation {
                try add(layer + "attn.q", rowsOf: { $0 * queryRows ..< ($0 + 1) * queryRows }, columnsOf: { _ in nil })
                try add(layer + "attn.k", rowsOf: { $0 * headDim ..< ($0 + 1) * headDim }, columnsOf: { _ in nil })
                try add(layer + "attn.v", rowsOf: { $0 * headDim ..< ($0 + 1) * headDim }, columnsOf: { _ in nil })
                // Fused q/k/v: the head's rows in each third.
                for third in 0 ..< 3 {
                    try add(layer + "attn.qkv", rowsOf: { third * units * headDim + $0 * headDim ..< third * units * headDim + ($0 + 1) * headDim }, columnsOf: { _ in nil })
                }
            }
        }
        if ranking == .activation {
            let entry = model.names.required(readers.name)
            guard let sums = squareSums[entry.inputOf] else { throw EngineError(subject: readers.name, "no calibration statistics of its input") }
            let m = try Pruner.startingValues(store, entry)
            for u in 0 ..< units {
                var input = 0.0
                var weight = 0.0
                for c in readers.columns(u) {
                    input += sums[c]
                    for r in 0 ..< m.rows { weight += Double(m.values[r * m.columns + c]) * Double(m.values[r * m.columns + c]) }
                }
                scores[u] = (input * weight).squareRoot()
            }
        } else {
            try add(readers.name, rowsOf: { _ in nil }, columnsOf: readers.columns)
            if ranking == .l2 { scores = scores.map { $0.squareRoot() } }
        }
        return scores
    }

    /// Σx² per channel of the input of the layer that reads the units (o for heads, down for
    /// neurons) in each block, on the calibration windows through the model as it is.
    package static func inputSquareSums(
        _ model: BlockModel, blocks: [Int], unit: Unit, windows: [[Int]], progress: ((Int, Int) -> Void)? = nil,
        isCancelled: @escaping () -> Bool = { false }
    ) throws -> [String: [Double]] {
        var byBlock: [Int: [LayerNames.Entry]] = [:]
        for block in blocks {
            if let entry = model.names.entry("layer.\(block).\(unit == .heads ? "attn.o" : "mlp.down")") { byBlock[block] = [entry] }
        }
        var sums: [String: [Double]] = [:]
        try CalibratedQuantizer.eachBlockWithHessians(
            model, byBlock, windows: windows, gram: false, preservesFunction: true, progress: progress, isCancelled: isCancelled
        ) { _, statistics in
            for (name, observed) in statistics { sums[name] = observed.squareSums }
        }
        return sums
    }

    /// The units to remove per block: `fraction` of each block's (`uniform`), or of all the
    /// blocks' units together by one ranking (counts vary by block; every block keeps one).
    package static func plan(
        _ model: BlockModel, blocks: [Int], unit: Unit, fraction: Double, ranking: Ranking, uniform: Bool,
        squareSums: [String: [Double]] = [:]
    ) throws -> [Int: [Int]] {
        var all: [(block: Int, unit: Int, score: Double)] = []
        var counts: [Int: Int] = [:]
        var plan: [Int: [Int]] = [:]
        for block in blocks {
            let scores = try self.scores(model, block: block, unit: unit, ranking: ranking, squareSums: squareSums)
            counts[block] = scores.count
            if uniform {
                let ranked = scores.indices.sorted { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
                plan[block] = Array(ranked.prefix(Pruner.prunedCount(scores.count, fraction))).sorted()
            } else {
                all += scores.enumerated().map { (block, $0.offset, $0.element) }
            }
        }
        if !uniform {
            var removed = Pruner.prunedCount(all.count, fraction)
            var left = counts
            for candidate in all.sorted(by: { $0.score < $1.score || ($0.score == $1.score && ($0.block, $0.unit) < ($1.block, $1.unit)) }) {
                guard removed > 0 else { break }
                guard left[candidate.block]! > 1 else { continue }
                plan[candidate.block, default: []].append(candidate.unit)
                left[candidate.block]! -= 1
                removed -= 1
            }
            for block in plan.keys { plan[block]!.sort() }
        }
        return plan.filter { !$0.value.isEmpty }
    }

    /// Removes the planned units: the tensors of each block shrink (weights dense in their
    /// dtype, masks kept on what is left, biases with them).
    package static func apply(_ model: BlockModel, plan: [Int: [Int]], unit: Unit, isCancelled: () -> Bool = { false }) throws -> [BlockChange] {
        let headDim = model.config.headDim
        var changes: [BlockChange] = []
        for block in plan.keys.sorted() {
            if isCancelled() { throw EngineError.cancelled }
            let removed = Set(plan[block]!)
            let (units, perUnit) = try unitCount(model, block: block, unit: unit)
            let keptUnits = (0 ..< units).filter { !removed.contains($0) }
            guard !keptUnits.isEmpty else { throw EngineError(subject: "layer.\(block)", "removing every \(unit == .heads ? "head" : "neuron") of a block") }
            let layer = "layer.\(block)."
            func indices(_ size: Int) -> [Int] { keptUnits.flatMap { Array($0 * size ..< ($0 + 1) * size) } }
            switch unit {
            case .neurons:
                let kept = indices(1)
                for name in ["mlp.gate", "mlp.up"] { try shrink(model, layer + name, rows: kept, columns: nil) }
                try shrink(model, layer + "mlp.down", rows: nil, columns: kept)
            case .heads:
                let query = indices(perUnit * headDim)
                let kv = indices(headDim)
                try shrink(model, layer + "attn.q", rows: query, columns: nil)
                try shrink(model, layer + "attn.qkv", rows: (0 ..< 3).flatMap { third in kv.map { third * units * headDim + $0 } }, columns: nil)
                try shrink(model, layer + "attn.k", rows: kv, columns: nil)
                try shrink(model, layer + "attn.v", rows: kv, columns: nil)
                try shrink(model, layer + "attn.o", rows: nil, columns: query)
            }
            let size = unit == .heads ? perUnit : 1
            changes.append(BlockChange(block: block, before: units * size, after: keptUnits.count * size, removed: plan[block]!))
        }
        return changes
    }

    /// Keeps the rows (out) and columns (in) listed of a linear layer, and its bias's entries
    /// for the rows.
    static func shrink(_ model: BlockModel, _ canonical: String, rows keptRows: [Int]?, columns keptColumns: [Int]?) throws {
        guard let entry = model.names.entry(canonical) else { return }
        let store = model.weights
        let m = try Pruner.startingValues(store, entry)
        let rows = keptRows ?? Array(0 ..< m.rows)
        let columns = keptColumns ?? Array(0 ..< m.columns)
        var values = [Float](repeating: 0, count: rows.count * columns.count)
        var kept = [Bool](repeating: true, count: values.count)
        for (i, r) in rows.enumerated() {
            for (j, c) in columns.enumerated() {
                values[i * columns.count + j] = m.values[r * m.columns + c]
                if let mask = m.mask { kept[i * columns.count + j] = mask.isKept(r * m.columns + c) }
            }
        }
        var mask: PruningMask?
        if let old = m.mask {
            mask = PruningMask(kept: kept)
            mask!.requested = old.requested
        }
        let current = try store.weight(entry.weight)
        var weight = try Weight(dense: values, shape: [rows.count, columns.count], mask: mask)
        if case .stored(let tensor) = current.form, tensor.dtype == .f16 || tensor.dtype == .bf16 {
            weight = try Weight(cast: values, shape: [rows.count, columns.count], to: tensor.dtype, mask: mask)
        }
        try store.resize(entry.weight, weight)
        if entry.hasBias, keptRows != nil {
            let bias = try store.floats(entry.bias)
            try store.resize(entry.bias, try Weight(dense: rows.map { bias[$0] }, shape: [rows.count]))
        }
    }
}
