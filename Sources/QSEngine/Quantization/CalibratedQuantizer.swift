import Foundation

/// The quantizers that need calibration inputs, run as llm-compressor's sequential pipeline:
/// the calibration windows go through the model block by block; each block is observed on
/// inputs that come from the blocks before it as already quantized, its layers are quantized,
/// and its outputs are recomputed with the quantized weights for the next block.
package enum CalibratedQuantizer {
    /// Why a layer's GPTQ raised its dampening.
    package typealias Warning = (_ canonical: String, _ message: String) -> Void

    /// The block a canonical name is in (`layer.3.attn.q` → 3), nil outside the blocks.
    package static func blockIndex(_ canonical: String) -> Int? {
        let parts = canonical.split(separator: ".", maxSplits: 2)
        guard parts.count == 3, parts[0] == "layer" else { return nil }
        return Int(parts[1])
    }

    /// GPTQ of the named linear layers of the blocks, in order, on the calibration windows, all
    /// on one scheme.
    package static func gptq(
        _ model: BlockModel, _ entries: [LayerNames.Entry], scheme: QuantizationScheme, options: GPTQ.Options,
        windows: [[Int]], warn: Warning? = nil, progress: ((Int, Int) -> Void)? = nil, isCancelled: @escaping () -> Bool = { false }
    ) throws -> [LayerQuantization] {
        try gptq(
            model, entries, schemes: { _ in scheme }, options: options, windows: windows, warn: warn, progress: progress,
            isCancelled: isCancelled)
    }

    /// Groups block layers by their block; throws for a layer outside the blocks or not linear.
    static func byBlock(_ entries: [LayerNames.Entry], method: String) throws -> [Int: [LayerNames.Entry]] {
        var byBlock: [Int: [LayerNames.Entry]] = [:]
        for entry in entries {
            guard let block = blockIndex(entry.canonical), case .linear = entry.kind else {
                throw EngineError(subject: entry.canonical, "\(method) quantizes the linear layers of the blocks; quantize \(entry.canonical) with method=rtn")
            }
            byBlock[block, default: []].append(entry)
        }
        return byBlock
    }

    /// GPTQ of the named linear layers of the blocks, in order, on the calibration windows, each
    /// on the scheme `schemes` gives it (mixed precision in one pass). One Hessian is collected
    /// per distinct input (q, k and v share theirs). Every result carries the layer's relative
    /// output error on its calibration inputs.
    package static func gptq(
        _ model: BlockModel, _ entries: [LayerNames.Entry], schemes: @escaping (LayerNames.Entry) -> QuantizationScheme,
        options: GPTQ.Options, windows: [[Int]], warn: Warning? = nil, progress: ((Int, Int) -> Void)? = nil,
        isCancelled: @escaping () -> Bool = { false }
    ) throws -> [LayerQuantization] {
        let byBlock = try byBlock(entries, method: "GPTQ")
        let store = model.weights
        var results: [LayerQuantization] = []
        try eachLayerWithHessian(model, byBlock, windows: windows, isCancelled: isCancelled) { entry, hessian in
            let scheme = schemes(entry)
            let start = try ModelQuantizer.startingValues(store, entry.weight)
            let result: GPTQ.Result
            do {
                result = try GPTQ.quantize(
                    start.values, rows: start.rows, columns: start.columns, hessian: hessian, scheme: scheme,
                    options: options, mask: start.mask,
                    onRetry: { damp in
                        warn?(entry.canonical, "the Hessian is not positive definite with the dampening asked for; retrying with damp=\(damp)")
                    })
            } catch let error as EngineError {
                throw EngineError(path: error.path, subject: entry.canonical, error.message)
            }
            let weight = try Weight(packed: result.packed, mask: start.mask)
            try store.set(entry.weight, weight)
            var measured = try ModelQuantizer.measure(entry, original: start.values, quantized: weight, scheme: scheme.description)
            measured.outputError = try relativeOutputError(
                original: start.values, quantized: try weight.floats(), rows: start.rows, hessian: hessian)
            results.append(measured)
            progress?(results.count, entries.count)
        }
        return results
    }

    /// Runs the windows block by block up to the last block `byBlock` names (blocks without
    /// layers in it run once, unobserved). Each block with layers is observed first, one
    /// Hessian per distinct input; then `body` gets each of its layers with its input's Hessian,
    /// and may change the layer before the block's outputs are recomputed for the next block.
    static func eachLayerWithHessian(
        _ model: BlockModel, _ byBlock: [Int: [LayerNames.Entry]], windows: [[Int]], progress: ((Int, Int) -> Void)? = nil,
        isCancelled: @escaping () -> Bool, _ body: @escaping (LayerNames.Entry, HessianAccumulator) throws -> Void
    ) throws {
        try eachBlockWithHessians(model, byBlock, windows: windows, progress: progress, isCancelled: isCancelled) { block, hessians in
            for entry in byBlock[block] ?? [] {
                if isCancelled() { throw EngineError.cancelled }
                if let hessian = hessians[entry.inputOf] { try body(entry, hessian) }
            }
        }
    }

    /// Runs the windows block by block as `eachLayerWithHessian` does, giving `body` each
    /// observed block with the Hessians (and channel statistics) of its layers' inputs, keyed by
    /// `inputOf`, to change the block's weights before its outputs are recomputed.
    static func eachBlockWithHessians(
        _ model: BlockModel, _ byBlock: [Int: [LayerNames.Entry]], windows: [[Int]], gram: Bool = true,
        preservesFunction: Bool = false, progress: ((Int, Int) -> Void)? = nil,
        isCancelled: @escaping () -> Bool, blockInputs: ((Int, [Activations]) throws -> Void)? = nil,
        _ body: @escaping (Int, [String: HessianAccumulator]) throws -> Void
    ) throws {
        guard let lastBlock = byBlock.keys.max() else { return }
        let store = model.weights
        var accumulators: [String: HessianAccumulator] = [:]
        _ = try BlockRunner(model: model, parallelSequences: true).runAll(
            windows,
            observer: { _, canonical, input in accumulators[canonical]?.add(input) },
            afterBlock: { block in
                if byBlock[block] != nil {
                    if isCancelled() { throw EngineError.cancelled }
                    try body(block, accumulators)
                }
                accumulators = [:]
            },
            observes: { block in
                guard let selected = byBlock[block] else { return false }
                for entry in selected where accumulators[entry.inputOf] == nil {
                    accumulators[entry.inputOf] = HessianAccumulator(size: (try? store.weight(entry.weight).inFeatures) ?? 0, gram: gram)
                }
                return true
            },
            stopAfter: lastBlock, progress: progress, isCancelled: isCancelled, blockInputs: blockInputs,
            preservesFunction: preservesFunction)
    }

    /// The relative output error of each named block layer (weights as held now against the
    /// values they were quantized from), on its inputs in the model as it is now: the windows
    /// run block by block, each block's Hessians collected and used, then dropped.
    package static func outputErrors(
        _ model: BlockModel, _ entries: [LayerNames.Entry], windows: [[Int]], progress: ((Int, Int) -> Void)? = nil,
        isCancelled: @escaping () -> Bool = { false }
    ) throws -> [String: Double] {
        var byBlock: [Int: [LayerNames.Entry]] = [:]
        for entry in entries {
            if let block = blockIndex(entry.canonical) { byBlock[block, default: []].append(entry) }
        }
        let store = model.weights
        var errors: [String: Double] = [:]
        try eachLayerWithHessian(model, byBlock, windows: windows, progress: progress, isCancelled: isCancelled) { entry, hessian in
            let start = try ModelQuantizer.startingValues(store, entry.weight)
            errors[entry.canonical] = try relativeOutputError(
                original: start.values, quantized: try ModelQuantizer.outInValues(try store.weight(entry.weight)),
                rows: start.rows, hessian: hessian)
        }
        return errors
    }

    /// The relative output error of each named block layer rounded to nearest on each of
    /// `schemes` (from its starting values), on its inputs in the model as it is now; nothing is
    /// changed. One pass of the windows, each block's Hessians used and dropped. `rounded`
    /// gives a layer's weight on a scheme (where the caller has it already).
    package static func roundingErrors(
        _ model: BlockModel, _ entries: [LayerNames.Entry], schemes: [QuantizationScheme], windows: [[Int]],
        rounded: @escaping (LayerNames.Entry, QuantizationScheme) throws -> Weight? = { _, _ in nil },
        progress: ((Int, Int) -> Void)? = nil, isCancelled: @escaping () -> Bool = { false }
    ) throws -> [String: [Double]] {
        let store = model.weights
        var errors: [String: [Double]] = [:]
        try eachLayerWithHessian(
            model, try byBlock(entries, method: "the output error"), windows: windows, progress: progress, isCancelled: isCancelled
        ) { entry, hessian in
            let start = try ModelQuantizer.startingValues(store, entry.weight)
            errors[entry.canonical] = try schemes.map { scheme in
                let weight = try rounded(entry, scheme) ?? ModelQuantizer.roundedToNearest(start, entry, scheme: scheme)
                return try relativeOutputError(
                    original: start.values, quantized: try ModelQuantizer.outInValues(weight), rows: start.rows, hessian: hessian)
            }
        }
        return errors
    }

    /// ‖X(W − Ŵ)ᵀ‖ / ‖XWᵀ‖ over the inputs whose XᵀX is `hessian`: with Δ = W − Ŵ,
    /// ‖XΔᵀ‖² = Σ_rows Δ_r H Δ_rᵀ, so the inputs themselves need not be kept.
    package static func relativeOutputError(original: [Float], quantized: [Float], rows: Int, hessian: HessianAccumulator) throws -> Double {
        let columns = hessian.size
        guard original.count == rows * columns, quantized.count == original.count else {
            throw EngineError("output error: a \(rows)×\(columns) weight expected")
        }
        let h = hessian.matrix
        let delta = zip(original, quantized).map { $0 - $1 }
        let signal = Smoothing.quadraticForm(original, rows: rows, columns: columns, hessian: h)
        let noise = Smoothing.quadraticForm(delta, rows: rows, columns: columns, hessian: h)
        return signal > 0 ? (max(0, noise) / signal).squareRoot() : 0
    }

    /// Puts each named layer that is quantized back in the form it was made from, so that a
    /// method that smooths before it quantizes works on values, not codes.
    static func revertToOrigins(_ store: WeightStore, _ entries: [LayerNames.Entry]) throws {
        for entry in entries where try store.weight(entry.weight).isQuantized {
            try store.set(entry.weight, try store.origin(entry.weight))
        }
    }

    /// AWQ of the named linear layers of the blocks, in order: at each of a block's smoothing
    /// sites the per-channel factors are searched (`Smoothing.awqSearch`) on the block's inputs
    /// and folded in, then the block's layers are rounded to `scheme` (with its clip search).
    /// Sites that cannot be folded (a layer quantized outside this command) are named to
    /// `note` and left unscaled. Returns the layers' results and the sites smoothed.
    package static func awq(
        _ model: BlockModel, _ entries: [LayerNames.Entry], scheme: QuantizationScheme, windows: [[Int]], grid: Int = 20,
        note: Warning? = nil, progress: ((Int, Int) -> Void)? = nil, isCancelled: @escaping () -> Bool = { false }
    ) throws -> (results: [LayerQuantization], smoothed: Int) {
        let byBlock = try byBlock(entries, method: "AWQ")
        let store = model.weights
        let names = model.names
        let selected = Set(entries.map(\.canonical))
        try revertToOrigins(store, entries)
        var results: [LayerQuantization] = []
        var smoothed = 0
        var inputs: [Activations] = []
        let keep = { (_: Int, states: [Activations]) in inputs = Array(states.prefix(searchWindows)) }
        try eachBlockWithHessians(model, byBlock, windows: windows, isCancelled: isCancelled, blockInputs: keep) { block, hessians in
            var inputFactors: [String: [Float]] = [:]
            // The block's outputs on a few windows as it is now, for the sites scored on them.
            var reference: [Activations]?
            for site in Smoothing.sites(model, block: block) {
                guard let first = site.layers.first(where: selected.contains), let hessian = hessians[names.required(first).inputOf] else { continue }
                if let obstacle = try Smoothing.obstacle(site, store: store, names: names, selected: selected) {
                    note?(first, "not smoothed: \(obstacle)")
                    continue
                }
                if isCancelled() { throw EngineError.cancelled }
                let weights = try site.layers.map { layer in
                    let start = try ModelQuantizer.startingValues(store, names.required(layer).weight)
                    return (start.values, start.rows, start.mask, selected.contains(layer))
                }
                // Errors in q and k reach the block's output through the attention's softmax,
                // not in proportion to their own size: those sites are scored on the block's
                // output; the others on their layers' outputs, exactly from XᵀX.
                var blockLoss: (([Float]?) throws -> Double)?
                if site.layers.contains(where: { $0.hasSuffix(".attn.q") || $0.hasSuffix(".attn.k") || $0.hasSuffix(".attn.qkv") }) {
                    if reference == nil {
                        reference = try inputs.map { x in
                            var y = x
                            try model.block(block, &y, pass: ForwardPass())
                            return y
                        }
                    }
                    let expected = reference!
                    blockLoss = { factors in
                        try blockOutputError(
                            model, block: block, layers: zip(site.layers, weights).filter { $0.1.3 }.map { ($0.0, $0.1.0, $0.1.1, $0.1.2) },
                            factors: factors, scheme: scheme, importance: Smoothing.scaledImportance(hessian.diagonal, factors: factors),
                            inputs: inputs, reference: expected)
                    }
                }
                let search = try Smoothing.awqSearch(
                    weights: weights, columns: hessian.size, hessian: hessian, scheme: scheme, grid: grid, loss: blockLoss)
                guard search.ratio != nil else { continue }
                try Smoothing.fold(site, factors: search.factors, model: model)
                for layer in site.layers { inputFactors[layer] = search.factors }
                smoothed += 1
            }
            for entry in byBlock[block] ?? [] {
                if isCancelled() { throw EngineError.cancelled }
                let start = try ModelQuantizer.startingValues(store, entry.weight)
                // The clip search weighs each column by the mean x² of the input it now takes
                // (X / s): AWQ's clip search judges by the output, not the weights alone, and a
                // search by weight error alone clips the channels the factors just enlarged.
                var importance: [Float]?
                if let hessian = hessians[entry.inputOf] {
                    importance = Smoothing.scaledImportance(hessian.diagonal, factors: inputFactors[entry.canonical])
                }
                let packed: PackedWeight
                do {
                    packed = try RoundToNearest.quantize(
                        start.values, rows: start.rows, columns: start.columns, scheme: scheme, mask: start.mask, importance: importance)
                } catch let error as EngineError {
                    throw EngineError(path: error.path, subject: entry.canonical, error.message)
                }
                let weight = try Weight(packed: packed, mask: start.mask)
                try store.set(entry.weight, weight)
                var measured = try ModelQuantizer.measure(entry, original: start.values, quantized: weight, scheme: scheme.description)
                if let hessian = hessians[entry.inputOf] {
                    // The layer's input is now X / s: undo s on its columns to use XᵀX.
                    var original = start.values
                    var quantized = try weight.floats()
                    if let factors = inputFactors[entry.canonical] {
                        for i in original.indices {
                            original[i] /= factors[i % start.columns]
                            quantized[i] /= factors[i % start.columns]
                        }
                    }
                    measured.outputError = try relativeOutputError(original: original, quantized: quantized, rows: start.rows, hessian: hessian)
                }
                results.append(measured)
                progress?(results.count, entries.count)
            }
        }
        return (results, smoothed)
    }

    /// Windows AWQ scores a site's candidates on when it runs the block for them.
    static let searchWindows = 4

    /// Σ‖y − y_ref‖² of block `block` over `inputs` with each of `layers` (canonical name, out×in
    /// values, rows, mask) replaced by its quantization with input factors `factors` (Q(W·s)/s),
    /// the layers put back afterwards.
    static func blockOutputError(
        _ model: BlockModel, block: Int, layers: [(String, [Float], Int, PruningMask?)], factors: [Float]?,
        scheme: QuantizationScheme, importance: [Float]? = nil, inputs: [Activations], reference: [Activations]
    ) throws -> Double {
        let store = model.weights
        let names = layers.map { model.names.required($0.0).weight }
        let saved = try names.map { try store.weight($0) }
        defer { for (name, weight) in zip(names, saved) { try? store.set(name, weight) } }
        for ((_, values, rows, mask), name) in zip(layers, names) {
            let columns = values.count / rows
            var scaled = values
            if let factors { for i in scaled.indices { scaled[i] *= factors[i % columns] } }
            var restored = try RoundToNearest.fakeQuantize(
                scaled, rows: rows, columns: columns, scheme: scheme, mask: mask, importance: importance)
            if let factors { for i in restored.indices { restored[i] /= factors[i % columns] } }
            try store.set(name, try Weight(dense: restored, shape: [rows, columns]))
        }
        var errors = [Double](repeating: 0, count: inputs.count)
        try errors.withUnsafeMutableBufferPointer { buffer in
            let out = SharedDoubles(base: buffer.baseAddress!)
            try BlockRunner(model: model, parallelSequences: true).forEachSequence(inputs.count) { i in
                var y = inputs[i]
                try model.block(block, &y, pass: ForwardPass())
                var sum = 0.0
                for j in y.data.indices {
                    let d = Double(y.data[j]) - Double(reference[i].data[j])
                    sum += d * d
                }
                out.base[i] = sum
            }
        }
        return errors.reduce(0, +)
    }

    /// SmoothQuant's smoothing (α = `alpha`) folded at every site of the blocks whose layers
    /// include one of `entries`, from each site's largest |x| per channel on the calibration
    /// windows: the model computes the same function after it; its activations have smaller
    /// outliers, its weights larger. Returns the number of sites smoothed.
    package static func smoothQuant(
        _ model: BlockModel, _ entries: [LayerNames.Entry], alpha: Double, windows: [[Int]], note: Warning? = nil,
        progress: ((Int, Int) -> Void)? = nil, isCancelled: @escaping () -> Bool = { false }
    ) throws -> Int {
        let store = model.weights
        let names = model.names
        let selected = Set(entries.map(\.canonical))
        try revertToOrigins(store, entries)
        // Observe every site's input in the blocks the entries are in.
        var byBlock: [Int: [LayerNames.Entry]] = [:]
        for entry in entries {
            guard let block = blockIndex(entry.canonical) else { continue }
            for site in Smoothing.sites(model, block: block) where site.layers.contains(entry.canonical) {
                byBlock[block, default: []].append(names.required(site.layers[0]))
            }
        }
        var smoothed = 0
        // Smoothing leaves each block computing what it did: one pass over the windows does.
        try eachBlockWithHessians(
            model, byBlock, windows: windows, gram: false, preservesFunction: true, progress: progress, isCancelled: isCancelled
        ) { block, statistics in
            for site in Smoothing.sites(model, block: block) {
                guard let first = site.layers.first(where: selected.contains), let observed = statistics[names.required(first).inputOf] else { continue }
                if let obstacle = try Smoothing.obstacle(site, store: store, names: names, selected: selected) {
                    note?(first, "not smoothed: \(obstacle)")
                    continue
                }
                let weights = try site.layers.map { try ModelQuantizer.startingValues(store, names.required($0).weight).values }
                let factors = Smoothing.smoothQuantFactors(
                    activationMaxima: observed.absoluteMaxima, weights: weights, columns: observed.size, alpha: alpha)
                try Smoothing.fold(site, factors: factors, model: model)
                smoothed += 1
            }
        }
        return smoothed
    }

    /// The range of the input of each named block layer on the calibration windows, in the model
    /// as it is (for static activation scales), by canonical name: the mean over windows of each
    /// window's largest |x|, as a moving-average min-max observer gives it.
    package static func inputMaxima(
        _ model: BlockModel, _ entries: [LayerNames.Entry], windows: [[Int]], progress: ((Int, Int) -> Void)? = nil,
        isCancelled: @escaping () -> Bool = { false }
    ) throws -> [String: Float] {
        var byBlock: [Int: [LayerNames.Entry]] = [:]
        for entry in entries {
            guard let block = blockIndex(entry.canonical) else {
                throw EngineError(subject: entry.canonical, "static activation scales are calibrated for the layers of the blocks")
            }
            byBlock[block, default: []].append(entry)
        }
        var maxima: [String: Float] = [:]
        try eachBlockWithHessians(
            model, byBlock, windows: windows, gram: false, preservesFunction: true, progress: progress, isCancelled: isCancelled
        ) { block, statistics in
            for entry in byBlock[block] ?? [] {
                guard let observed = statistics[entry.inputOf], observed.batches > 0 else { continue }
                maxima[entry.canonical] = Float(observed.batchMaximumSum / Double(observed.batches))
            }
        }
        return maxima
    }
}

/// Per-window results written by the worker thread that owns each index.
struct SharedDoubles: @unchecked Sendable {
    let base: UnsafeMutablePointer<Double>
}
