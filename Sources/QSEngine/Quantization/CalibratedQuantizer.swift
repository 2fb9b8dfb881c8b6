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
        _ model: BlockModel, _ byBlock: [Int: [LayerNames.Entry]], windows: [[Int]], progress: ((Int, Int) -> Void)? = nil,
        isCancelled: @escaping () -> Bool, _ body: @escaping (Int, [String: HessianAccumulator]) throws -> Void
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
                    accumulators[entry.inputOf] = HessianAccumulator(size: (try? store.weight(entry.weight).inFeatures) ?? 0)
                }
                return true
            },
            stopAfter: lastBlock, progress: progress, isCancelled: isCancelled)
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
        func quadratic(_ m: [Float]) -> Double {
            var product = [Float](repeating: 0, count: rows * columns)
            GEMM.sgemm(m: rows, n: columns, k: columns, a: m, b: h, c: &product)
            var sum = 0.0
            for i in product.indices { sum += Double(product[i]) * Double(m[i]) }
            return sum
        }
        let delta = zip(original, quantized).map { $0 - $1 }
        let signal = quadratic(original)
        return signal > 0 ? (max(0, quadratic(delta)) / signal).squareRoot() : 0
    }
}
