import Foundation

/// Per-channel smoothing folded into a block (the `SmoothingMapping`s its architecture declares):
/// the input of some linear layers divided by factors s, their input columns multiplied by s,
/// so that the block computes the same function while the weights (AWQ) or the activations
/// (SmoothQuant) become easier to quantize.
package enum Smoothing {
    /// A mapping of one block, with its canonical names.
    package struct Site: Sendable {
        package var mapping: SmoothingMapping
        package var block: Int
        /// `layer.N.` + the mapping's layers.
        package var layers: [String]
        /// `layer.N.` + the source's name.
        package var source: String
    }

    /// The mappings of `block` in `model`, with their canonical names.
    package static func sites(_ model: BlockModel, block: Int) -> [Site] {
        let prefix = "layer.\(block)."
        return model.config.architecture.definition.modules(model.config).smoothing.compactMap { mapping in
            let source: String
            switch mapping.source {
            case .norm(let name), .linear(let name): source = prefix + name
            }
            let layers = mapping.layers.map { prefix + $0 }
            guard model.names.entry(source) != nil, layers.allSatisfy({ model.names.entry($0) != nil }) else { return nil }
            return Site(mapping: mapping, block: block, layers: layers, source: source)
        }
    }

    /// Why a site cannot be smoothed in this command, or nil when it can: every layer that is
    /// not being quantized again (`selected`) must not be quantized now, since its codes would
    /// have to change.
    package static func obstacle(_ site: Site, store: WeightStore, names: LayerNames, selected: Set<String>) throws -> String? {
        var linears = site.layers
        if case .linear = site.mapping.source { linears.append(site.source) }
        for name in linears where !selected.contains(name) {
            if try store.weight(names.module(name) + ".weight").isQuantized {
                return "\(name) is quantized and not part of this command"
            }
        }
        return nil
    }

    /// Folds `factors` into a site: the source divides by them, the layers' input columns
    /// multiply by them. The layers must not be quantized (see `obstacle`).
    package static func fold(_ site: Site, factors: [Float], model: BlockModel) throws {
        let store = model.weights
        let names = model.names
        let inverse = factors.map { 1 / $0 }
        switch site.mapping.source {
        case .norm:
            let entry = names.required(site.source)
            try store.replace(entry.weight, with: zip(try store.floats(entry.weight), inverse).map { $0 * $1 })
            if store.contains(entry.bias) {
                try store.replace(entry.bias, with: zip(try store.floats(entry.bias), inverse).map { $0 * $1 })
            }
        case .linear:
            let entry = names.required(site.source)
            let weight = try store.weight(entry.weight)
            var rows = [Float](repeating: 1, count: weight.outFeatures)
            let firstRow = rows.count - inverse.count
            guard firstRow >= 0 else {
                throw EngineError(subject: site.source, "has \(rows.count) outputs; rows \(firstRow)..<\(firstRow + inverse.count) were to be smoothed")
            }
            rows.replaceSubrange(firstRow ..< firstRow + inverse.count, with: inverse)
            try store.set(entry.weight, try weight.scaled(ChannelScaling(output: rows)))
            if entry.hasBias {
                try store.replace(entry.bias, with: zip(try store.floats(entry.bias), rows).map { $0 * $1 })
            }
        }
        for layer in site.layers {
            let name = names.module(layer) + ".weight"
            try store.set(name, try store.weight(name).scaled(ChannelScaling(input: factors)))
        }
    }

    /// SmoothQuant's factors (Xiao et al., 2023): s_j = max|X_j|^α / max|W_j|^(1−α), the
    /// weight maximum taken over the input column j of every layer of the site; channels that
    /// never fire, or columns that are all zero, keep s = 1.
    package static func smoothQuantFactors(activationMaxima: [Float], weights: [[Float]], columns: Int, alpha: Double) -> [Float] {
        var weightMaxima = [Float](repeating: 0, count: columns)
        for w in weights {
            for (index, value) in w.enumerated() { weightMaxima[index % columns] = max(weightMaxima[index % columns], abs(value)) }
        }
        return (0 ..< columns).map { j in
            let x = Double(activationMaxima[j])
            let w = Double(weightMaxima[j])
            guard x > 0, w > 0 else { return 1 }
            let s = Foundation.pow(x, alpha) / Foundation.pow(w, 1 - alpha)
            return s.isFinite && s > 0 ? Float(max(s, 1e-5)) : 1
        }
    }

    /// The outcome of AWQ's search at one site.
    package struct AWQSearch: Sendable {
        /// The chosen factors (all 1 when no exponent beat leaving the site as it is).
        package var factors: [Float]
        /// The exponent chosen, nil when leaving the site unscaled was best.
        package var ratio: Double?
        /// Σ‖X(Ŵ − W)ᵀ‖² over the site's quantized layers with the factors, and without any.
        package var loss: Double
        package var unscaledLoss: Double
    }

    /// AWQ's scale search (Lin et al., 2024) at one site: s = x̄^α / w̄^(1−α) (x̄ the mean |x| of
    /// each input channel, w̄ the mean over rows of |w| relative to its group's largest), normalised
    /// so max·min = 1, for α on a grid of `grid` points in [0, 1); each candidate is scored by the
    /// output error its quantization (on the scheme, with its clip search weighted as the final
    /// rounding's is) leaves, Σ‖X(Q(W·s)/s − W)ᵀ‖² over the layers being quantized,
    /// computed exactly from XᵀX (or by `scoring`, given the factors or nil for none, when the
    /// site's error is better judged further on). Leaving the site unscaled is a candidate too, so the result is
    /// never worse than round-to-nearest on that score.
    package static func awqSearch(
        weights: [(values: [Float], rows: Int, mask: PruningMask?, quantized: Bool)], columns: Int,
        hessian: HessianAccumulator, scheme: QuantizationScheme, grid: Int = 20, loss scoring: (([Float]?) throws -> Double)? = nil
    ) throws -> AWQSearch {
        let h = hessian.matrix
        let activation = hessian.absoluteMeans
        let groupSize = min(columns, scheme.groupSize(columns: columns))
        // w̄: each row's |w| relative to its group's largest, averaged over every row.
        var relative = [Double](repeating: 0, count: columns)
        var rowCount = 0
        for w in weights {
            for r in 0 ..< w.rows {
                var first = 0
                while first < columns {
                    let last = min(columns, first + groupSize)
                    var largest: Float = 0
                    for c in first ..< last { largest = max(largest, abs(w.values[r * columns + c])) }
                    if largest > 0 { for c in first ..< last { relative[c] += Double(abs(w.values[r * columns + c]) / largest) } }
                    first = last
                }
            }
            rowCount += w.rows
        }
        let weightMeans = relative.map { $0 / Double(max(rowCount, 1)) }
        let diagonal = hessian.diagonal
        func loss(_ factors: [Float]?) throws -> Double {
            if let scoring { return try scoring(factors) }
            var total = 0.0
            let importance = scaledImportance(diagonal, factors: factors)
            for w in weights where w.quantized {
                var scaled = w.values
                if let factors { for i in scaled.indices { scaled[i] *= factors[i % columns] } }
                var delta = try RoundToNearest.fakeQuantize(
                    scaled, rows: w.rows, columns: columns, scheme: scheme, mask: w.mask, importance: importance)
                for i in delta.indices {
                    let restored = factors.map { delta[i] / $0[i % columns] } ?? delta[i]
                    delta[i] = restored - w.values[i]
                }
                total += quadraticForm(delta, rows: w.rows, columns: columns, hessian: h)
            }
            return total
        }
        let unscaled = try loss(nil)
        var best = AWQSearch(factors: [Float](repeating: 1, count: columns), ratio: nil, loss: unscaled, unscaledLoss: unscaled)
        for step in 0 ..< grid {
            let ratio = Double(step) / Double(grid)
            var factors = (0 ..< columns).map { j -> Float in
                let s = Foundation.pow(Double(activation[j]), ratio) / (Foundation.pow(weightMeans[j], 1 - ratio) + 1e-4)
                return Float(max(s, 1e-4))
            }
            let largest = factors.max() ?? 1
            let smallest = factors.min() ?? 1
            let norm = (largest * smallest).squareRoot()
            guard norm.isFinite, norm > 0 else { continue }
            factors = factors.map { $0 / norm }
            guard factors.allSatisfy({ $0.isFinite && $0 > 0 }) else { continue }
            let value = try loss(factors)
            if value < best.loss { best = AWQSearch(factors: factors, ratio: ratio, loss: value, unscaledLoss: unscaled) }
        }
        return best
    }

    /// The clip search's column weights for a layer whose input is X / s: Σx² / s² per column
    /// (nil when XᵀX was not collected).
    package static func scaledImportance(_ diagonal: [Float], factors: [Float]?) -> [Float]? {
        guard !diagonal.isEmpty else { return nil }
        guard let factors else { return diagonal }
        return zip(diagonal, factors).map { $0 / ($1 * $1) }
    }

    /// Σ_r m_r H m_rᵀ for the rows of m [rows, columns]: ‖X mᵀ‖² when H = XᵀX.
    package static func quadraticForm(_ m: [Float], rows: Int, columns: Int, hessian h: [Float]) -> Double {
        var product = [Float](repeating: 0, count: rows * columns)
        GEMM.sgemm(m: rows, n: columns, k: columns, a: m, b: h, c: &product)
        var sum = 0.0
        for i in product.indices { sum += Double(product[i]) * Double(m[i]) }
        return sum
    }
}

extension QuantizationScheme {
    /// The same scheme with another range choice.
    package func with(clip: Clip) -> QuantizationScheme {
        var copy = self
        copy.clip = clip
        return copy
    }
}

extension RoundToNearest {
    /// W rounded to the scheme's grid and decoded again, as fp32 (out×in).
    package static func fakeQuantize(
        _ values: [Float], rows: Int, columns: Int, scheme: QuantizationScheme, mask: PruningMask? = nil,
        importance: [Float]? = nil
    ) throws -> [Float] {
        let packed = try quantize(values, rows: rows, columns: columns, scheme: scheme, mask: mask, importance: importance)
        return [Float](unsafeUninitializedCapacity: values.count) { buffer, initialized in
            packed.dequantizeRows(0 ..< rows, into: buffer.baseAddress!)
            initialized = values.count
        }
    }
}
