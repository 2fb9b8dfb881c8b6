import Foundation

/// Wanda and SparseGPT on a model: the calibration windows go through the model block by
/// block, as GPTQ's do; each block is observed with its weights as they are, its layers are
/// pruned, and its outputs recomputed so that the next block sees the inputs of the pruned
/// blocks before it.
package enum CalibratedPruner {
    /// The layers of `entries` by block; an error for one outside the blocks.
    static func byBlock(_ entries: [LayerNames.Entry], method: String) throws -> [Int: [LayerNames.Entry]] {
        for entry in entries where CalibratedQuantizer.blockIndex(entry.canonical) == nil {
            throw EngineError(subject: entry.canonical, "\(method) prunes the linear layers of the blocks; prune \(entry.canonical) with method=magnitude")
        }
        return try CalibratedQuantizer.byBlock(entries, method: method)
    }

    /// Wanda (Sun et al., 2023): each weight scored by |w| times the L2 norm of its input
    /// channel on the calibration tokens, the lowest pruned per output row (or per N:M group).
    /// No weight is updated.
    package static func wanda(
        _ model: BlockModel, _ entries: [LayerNames.Entry], amount: PruningAmount, windows: [[Int]],
        progress: ((Int, Int) -> Void)? = nil, isCancelled: @escaping () -> Bool = { false }
    ) throws -> [LayerPruning] {
        let store = model.weights
        var results: [LayerPruning] = []
        let byBlock = try byBlock(entries, method: "Wanda")
        try CalibratedQuantizer.eachBlockWithHessians(model, byBlock, windows: windows, gram: false, isCancelled: isCancelled) { block, statistics in
            for entry in byBlock[block] ?? [] {
                if isCancelled() { throw EngineError.cancelled }
                guard let observed = statistics[entry.inputOf] else { continue }
                let start = try Pruner.startingValues(store, entry)
                let scores = Pruner.wandaScores(start.values, rows: start.rows, columns: start.columns, squareSums: observed.squareSums)
                let mask = Pruner.mask(scores: scores, rows: start.rows, columns: start.columns, amount: amount, perRow: true)
                results.append(try Pruner.apply(mask, to: entry, in: store, requested: amount.description))
                progress?(results.count, entries.count)
            }
        }
        return results
    }

    /// SparseGPT (Frantar & Alistarh, 2023): the mask chosen block of columns by block of
    /// columns from w² / [H⁻¹]²ⱼⱼ, each pruned weight's error spread over the columns not yet
    /// reached (GPTQ's solver), and with `scheme` the kept weights quantized in the same pass
    /// (the paper's joint quantization). The pruned, updated values become the layer's
    /// starting values (what a later quantization starts from); with a scheme its form is packed.
    package static func sparseGPT(
        _ model: BlockModel, _ entries: [LayerNames.Entry], amount: PruningAmount, scheme: QuantizationScheme?,
        options: GPTQ.Options, windows: [[Int]], warn: ((String, String) -> Void)? = nil, progress: ((Int, Int) -> Void)? = nil,
        isCancelled: @escaping () -> Bool = { false }
    ) throws -> [LayerPruning] {
        let store = model.weights
        var results: [LayerPruning] = []
        let byBlock = try byBlock(entries, method: "SparseGPT")
        let selection: GPTQ.MaskSelection = switch amount {
        case .fraction(let f): .fraction(f)
        case .nOfM(let keep, let group): .nOfM(keep: keep, group: group)
        }
        try CalibratedQuantizer.eachLayerWithHessian(model, byBlock, windows: windows, isCancelled: isCancelled) { entry, hessian in
            let start = try Pruner.startingValues(store, entry)
            let solution: GPTQ.Solution
            do {
                solution = try GPTQ.solve(
                    start.values, rows: start.rows, columns: start.columns, hessian: hessian, scheme: scheme, options: options,
                    mask: start.mask, selection: selection,
                    onRetry: { damp in
                        warn?(entry.canonical, "the Hessian is not positive definite with the dampening asked for; retrying with damp=\(damp)")
                    })
            } catch let error as EngineError {
                throw EngineError(path: error.path, subject: entry.canonical, error.message)
            }
            var mask = solution.mask ?? PruningMask(keepingAll: start.rows * start.columns)
            mask.requested = amount.description
            if let packed = solution.packed {
                // The decoded values first: a later quantization starts from the pruned,
                // updated layer, not from the weights before pruning.
                let updated = try Weight(packed: packed).floats()
                try store.set(entry.weight, try Weight(dense: updated, shape: [start.rows, start.columns], mask: mask))
                try store.set(entry.weight, try Weight(packed: packed, mask: mask))
            } else {
                try store.set(entry.weight, try Weight(dense: solution.values!, shape: [start.rows, start.columns], mask: mask))
            }
            results.append(LayerPruning(layer: entry.canonical, params: mask.count, pruned: mask.count - mask.keptCount, requested: amount.description))
            progress?(results.count, entries.count)
        }
        return results
    }
}
