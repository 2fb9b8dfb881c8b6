import Foundation

/// How much to prune: a share of the weights, or N kept of every M consecutive weights along
/// the input dimension (the hardware definition: 2:4 keeps 2 of every 4).
package enum PruningAmount: Sendable, Equatable, CustomStringConvertible {
    case fraction(Double)
    case nOfM(keep: Int, group: Int)

    /// The share of weights pruned when the amount is met.
    package var sparsity: Double {
        switch self {
        case .fraction(let f): f
        case .nOfM(let keep, let group): Double(group - keep) / Double(group)
        }
    }

    package var description: String {
        switch self {
        case .fraction(let f): Self.formatPercent(f)
        case .nOfM(let keep, let group): "\(keep):\(group)"
        }
    }

    package static func formatPercent(_ f: Double) -> String {
        let percent = f * 100
        return (percent == percent.rounded() ? String(Int(percent)) : String(format: "%.4g", percent)) + "%"
    }
}

/// What pruning did to one layer.
package struct LayerPruning: Sendable {
    package var layer: String
    package var params: Int
    /// Elements pruned now (earlier pruning included).
    package var pruned: Int
    /// The mask asked for, as `50%` or `2:4`.
    package var requested: String
    package var sparsity: Double { params == 0 ? 0 : Double(pruned) / Double(params) }
}

/// Unstructured and N:M pruning of linear layers: the masks from scores, and their setting in
/// the store. A layer keeps its form (as loaded, cast or dense) with the mask applied; a pruned
/// weight is exactly zero in every later form (quantization puts it on the zero code). Pruning
/// never un-prunes: the amount is the sparsity the layer ends with, earlier pruning counted
/// (its zeros score lowest and are chosen first).
package enum Pruner {
    /// The number pruned of `count` elements at `fraction`: ⌊count × fraction⌋.
    package static func prunedCount(_ count: Int, _ fraction: Double) -> Int {
        min(count, max(0, Int((Double(count) * fraction).rounded(.down))))
    }

    /// The mask of scores [rows, columns] (out×in) pruning: with `.fraction`, that share of all
    /// the matrix's scores (`perRow`: of each row's); with `.nOfM`, the group − keep lowest in
    /// each group of consecutive columns of a row. The lowest scores go; ties by index.
    package static func mask(scores: [Float], rows: Int, columns: Int, amount: PruningAmount, perRow: Bool) -> PruningMask {
        precondition(scores.count == rows * columns, "Pruner.mask: \(scores.count) scores for \(rows)×\(columns)")
        var mask = PruningMask(keepingAll: rows * columns)
        scores.withUnsafeBufferPointer { all in
            switch amount {
            case .fraction(let fraction):
                if perRow {
                    for r in 0 ..< rows {
                        let row = UnsafeBufferPointer(rebasing: all[r * columns ..< (r + 1) * columns])
                        guard let threshold = Selection.threshold(pruning: prunedCount(columns, fraction), of: [row]) else { continue }
                        var equalLeft = threshold.equalPruned
                        Selection.prune(row, below: threshold, equalLeft: &equalLeft, into: &mask, first: r * columns)
                    }
                } else if let threshold = Selection.threshold(pruning: prunedCount(scores.count, fraction), of: [all]) {
                    var equalLeft = threshold.equalPruned
                    Selection.prune(all, below: threshold, equalLeft: &equalLeft, into: &mask)
                }
            case .nOfM(let keep, let group):
                precondition(group > 0 && columns % group == 0, "Pruner.mask: groups of \(group) in \(columns) columns")
                for r in 0 ..< rows {
                    for start in stride(from: r * columns, to: (r + 1) * columns, by: group) {
                        for index in Selection.lowest(group - keep, of: start ..< start + group, score: { all[$0] }) { mask.prune(index) }
                    }
                }
            }
        }
        return mask
    }

    /// One magnitude threshold across several matrices: the masks pruning `fraction` of all
    /// their elements together, the smallest |w| first (torch's global_unstructured with L1).
    package static func globalMasks(magnitudes: [[Float]], fraction: Double) -> [PruningMask] {
        var masks = magnitudes.map { PruningMask(keepingAll: $0.count) }
        let total = magnitudes.reduce(0) { $0 + $1.count }
        withBuffers(magnitudes) { buffers in
            guard let threshold = Selection.threshold(pruning: prunedCount(total, fraction), of: buffers) else { return }
            var equalLeft = threshold.equalPruned
            for (index, buffer) in buffers.enumerated() {
                Selection.prune(buffer, below: threshold, equalLeft: &equalLeft, into: &masks[index])
            }
        }
        return masks
    }

    /// Wanda's scores (Sun et al., 2023): |W_ij| · ‖X_j‖₂, the weight's magnitude times the L2
    /// norm of its input channel over the calibration tokens.
    package static func wandaScores(_ values: [Float], rows: Int, columns: Int, squareSums: [Double]) -> [Float] {
        precondition(squareSums.count == columns && values.count == rows * columns, "Pruner.wandaScores: shapes")
        let norms = squareSums.map { Float($0.squareRoot()) }
        var scores = [Float](repeating: 0, count: values.count)
        for r in 0 ..< rows { for c in 0 ..< columns { scores[r * columns + c] = abs(values[r * columns + c]) * norms[c] } }
        return scores
    }

    /// Calls `body` with a buffer over each array.
    private static func withBuffers<R>(_ arrays: [[Float]], _ body: ([UnsafeBufferPointer<Float>]) -> R) -> R {
        func nest(_ index: Int, _ buffers: [UnsafeBufferPointer<Float>]) -> R {
            guard index < arrays.count else { return body(buffers) }
            return arrays[index].withUnsafeBufferPointer { nest(index + 1, buffers + [$0]) }
        }
        return nest(0, [])
    }

    // MARK: The store

    /// Refuses a layer quantized by qs: prune first, then quantize.
    package static func refuseQuantized(_ store: WeightStore, _ entry: LayerNames.Entry) throws {
        let current = try store.weight(entry.weight)
        if case .packed = current.form {
            throw EngineError(subject: entry.canonical, "is quantized (\(current.formName)); prune before quantizing (reset, or restore a snapshot, first)")
        }
    }

    /// The values pruning of `entry` starts from, out×in, with its mask so far (pruned
    /// elements zero). A layer quantized by qs is refused.
    package static func startingValues(_ store: WeightStore, _ entry: LayerNames.Entry) throws
        -> (values: [Float], rows: Int, columns: Int, mask: PruningMask?)
    {
        try refuseQuantized(store, entry)
        return try ModelQuantizer.startingValues(store, entry.weight)
    }

    /// Sets `entry`'s weight to its current form with `mask` (out×in) added to the mask it had.
    package static func apply(_ mask: PruningMask, to entry: LayerNames.Entry, in store: WeightStore, requested: String) throws -> LayerPruning {
        let current = try store.weight(entry.weight)
        let rows = current.outFeatures
        let columns = current.inFeatures
        // Out×in to the tensor's order, joined with what was pruned before.
        var combined = current.layout == .outIn ? mask : ModelQuantizer.transposeMask(mask, rows: rows, columns: columns)
        if let earlier = current.mask {
            for index in 0 ..< combined.count where !earlier.isKept(index) { combined.prune(index) }
        }
        combined.requested = requested
        try store.set(entry.weight, try current.withMask(combined))
        return LayerPruning(layer: entry.canonical, params: combined.count, pruned: combined.count - combined.keptCount, requested: requested)
    }

    /// Magnitude pruning of `entries`: one threshold across all (`global`), or the amount in
    /// each layer (N:M always per group).
    package static func magnitude(
        _ store: WeightStore, _ entries: [LayerNames.Entry], amount: PruningAmount, global: Bool, isCancelled: () -> Bool = { false }
    ) throws -> [LayerPruning] {
        var magnitudes: [[Float]] = []
        var shapes: [(rows: Int, columns: Int)] = []
        for entry in entries {
            if isCancelled() { throw EngineError.cancelled }
            let start = try startingValues(store, entry)
            magnitudes.append(start.values.map { abs($0) })
            shapes.append((start.rows, start.columns))
        }
        let masks: [PruningMask]
        if global, case .fraction(let fraction) = amount {
            masks = globalMasks(magnitudes: magnitudes, fraction: fraction)
        } else {
            masks = zip(magnitudes, shapes).map { mask(scores: $0, rows: $1.rows, columns: $1.columns, amount: amount, perRow: false) }
        }
        if isCancelled() { throw EngineError.cancelled }
        let requested = global ? "global \(amount)" : amount.description
        return try zip(entries, masks).map { try apply($1, to: $0, in: store, requested: requested) }
    }
}
