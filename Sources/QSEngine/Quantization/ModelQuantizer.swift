import Foundation

/// What quantizing one layer did: its scheme and size, and how far its weights moved.
package struct LayerQuantization: Sendable {
    package var canonical: String
    package var tensor: String
    package var scheme: String
    package var bitsPerWeight: Double
    /// Mean of (w − ŵ)² over the layer.
    package var weightMSE: Double
    /// 10·log10(Σw² / Σ(w − ŵ)²), in dB (infinite when nothing moved).
    package var sqnr: Double
    /// The largest |w − ŵ|.
    package var maxError: Double
    /// Σw² and Σ(w − ŵ)² over the layer, to total several layers' SQNR.
    package var signal: Double
    package var noise: Double
    package var count: Int
    /// ‖XWᵀ − XŴᵀ‖ / ‖XWᵀ‖ on the calibration inputs, when the method had them.
    package var outputError: Double?

    package init(
        canonical: String, tensor: String, scheme: String, bitsPerWeight: Double, weightMSE: Double, sqnr: Double,
        maxError: Double, signal: Double, noise: Double, count: Int, outputError: Double? = nil
    ) {
        self.canonical = canonical
        self.tensor = tensor
        self.scheme = scheme
        self.bitsPerWeight = bitsPerWeight
        self.weightMSE = weightMSE
        self.sqnr = sqnr
        self.maxError = maxError
        self.signal = signal
        self.noise = noise
        self.count = count
        self.outputError = outputError
    }
}

/// Quantization of a model's layers, each from the values it starts from (as loaded, or as
/// pruned), never from an earlier quantization: quantizing a layer again replaces what it had.
package enum ModelQuantizer {
    /// The values a quantization of `name` starts from, as an out×in matrix: the current
    /// values, or when the current form is itself a quantization or a cast, those of the form it
    /// was made from (as loaded, pruned or smoothed), with the weight's pruning mask applied.
    package static func startingValues(_ store: WeightStore, _ name: String) throws
        -> (values: [Float], rows: Int, columns: Int, mask: PruningMask?)
    {
        let current = try store.weight(name)
        guard current.shape.count == 2 else { throw EngineError(subject: name, "has shape \(current.shape); only matrices are quantized") }
        let source = current.isQuantized ? try store.origin(name) : current
        let rows = source.outFeatures
        let columns = source.inFeatures
        var values = try source.floats()
        if source.layout == .inOut { values = transpose(values, rows: columns, columns: rows) }
        // The mask is in the order of the current form's tensor; make it out×in.
        let mask = current.mask.map { current.layout == .outIn ? $0 : transposeMask($0, rows: columns, columns: rows) }
        if let mask {
            values.withUnsafeMutableBufferPointer { mask.apply(to: $0.baseAddress!, first: 0, count: $0.count) }
        }
        return (values, rows, columns, mask)
    }

    /// Quantizes each named weight by round-to-nearest on `scheme`, as one change.
    package static func roundToNearest(
        _ store: WeightStore, _ entries: [LayerNames.Entry], scheme: QuantizationScheme,
        progress: ((Int, Int) -> Void)? = nil, isCancelled: () -> Bool = { false }
    ) throws -> [LayerQuantization] {
        var results: [LayerQuantization] = []
        for (index, entry) in entries.enumerated() {
            if isCancelled() { throw EngineError.cancelled }
            let start = try startingValues(store, entry.weight)
            let weight = try roundedToNearest(start, entry, scheme: scheme)
            try store.set(entry.weight, weight)
            results.append(try measure(entry, original: start.values, quantized: weight, scheme: scheme.description))
            progress?(index + 1, entries.count)
        }
        return results
    }

    /// The weight `entry` gets from its starting values rounded to nearest on `scheme` (not
    /// set in the store); errors name the layer.
    package static func roundedToNearest(
        _ start: (values: [Float], rows: Int, columns: Int, mask: PruningMask?), _ entry: LayerNames.Entry, scheme: QuantizationScheme
    ) throws -> Weight {
        do {
            let packed = try RoundToNearest.quantize(start.values, rows: start.rows, columns: start.columns, scheme: scheme, mask: start.mask)
            return try Weight(packed: packed, mask: start.mask)
        } catch let error as EngineError {
            throw EngineError(path: error.path, subject: entry.canonical, error.message)
        }
    }

    /// Rounds each named weight to f16 or bf16 (the cast that halves its bytes).
    package static func cast(
        _ store: WeightStore, _ entries: [LayerNames.Entry], to dtype: DType, isCancelled: () -> Bool = { false }
    ) throws -> [LayerQuantization] {
        var results: [LayerQuantization] = []
        for entry in entries {
            if isCancelled() { throw EngineError.cancelled }
            let start = try startingValues(store, entry.weight)
            let weight = try Weight(cast: start.values, shape: [start.rows, start.columns], to: dtype, mask: start.mask)
            try store.set(entry.weight, weight)
            results.append(try measure(entry, original: start.values, quantized: weight, scheme: dtype.rawValue))
        }
        return results
    }

    /// Rounds each named weight to float8 e4m3 with one fp32 scale per output row, max|w| / 448
    /// (llm-compressor's FP8 weights).
    package static func castToFloat8(
        _ store: WeightStore, _ entries: [LayerNames.Entry], isCancelled: () -> Bool = { false }
    ) throws -> [LayerQuantization] {
        var results: [LayerQuantization] = []
        for entry in entries {
            if isCancelled() { throw EngineError.cancelled }
            let start = try startingValues(store, entry.weight)
            var codes = [UInt8](repeating: 0, count: start.values.count)
            var scales = [Float](repeating: 1, count: start.rows)
            for r in 0 ..< start.rows {
                let row = start.values[r * start.columns ..< (r + 1) * start.columns]
                let largest = row.reduce(Float(0)) { max($0, abs($1)) }
                let scale = largest > 0 ? largest / Float8.e4m3Max : 1
                scales[r] = scale
                for (c, value) in row.enumerated() { codes[r * start.columns + c] = Float8.e4m3Code(value / scale) }
            }
            let packed = try PackedWeight(
                rows: start.rows, columns: start.columns, bits: 8, granularity: .channel, codes: codes, scales: scales,
                scaleType: .f32, zero: .constant(0), codeFormat: .e4m3)
            let weight = try Weight(packed: packed, mask: start.mask)
            try store.set(entry.weight, weight)
            results.append(try measure(entry, original: start.values, quantized: weight, scheme: "f8 e4m3 channel"))
        }
        return results
    }

    /// A weight's values as an out×in matrix, whatever its layout.
    package static func outInValues(_ weight: Weight) throws -> [Float] {
        let values = try weight.floats()
        return weight.layout == .outIn ? values : transpose(values, rows: weight.inFeatures, columns: weight.outFeatures)
    }

    /// The error statistics of a quantized weight against the values it came from (out×in).
    package static func measure(_ entry: LayerNames.Entry, original: [Float], quantized: Weight, scheme: String) throws -> LayerQuantization {
        let values = try outInValues(quantized)
        var signal = 0.0
        var noise = 0.0
        var worst = 0.0
        for i in original.indices {
            let w = Double(original[i])
            let d = w - Double(values[i])
            signal += w * w
            noise += d * d
            worst = max(worst, abs(d))
        }
        return LayerQuantization(
            canonical: entry.canonical, tensor: entry.weight, scheme: scheme, bitsPerWeight: quantized.bitsPerWeight,
            weightMSE: noise / Double(max(original.count, 1)), sqnr: noise > 0 ? 10 * log10(signal / noise) : .infinity,
            maxError: worst, signal: signal, noise: noise, count: original.count)
    }

    static func transpose(_ values: [Float], rows: Int, columns: Int) -> [Float] {
        var out = [Float](repeating: 0, count: values.count)
        for r in 0 ..< rows { for c in 0 ..< columns { out[c * rows + r] = values[r * columns + c] } }
        return out
    }

    static func transposeMask(_ mask: PruningMask, rows: Int, columns: Int) -> PruningMask {
        var transposed = PruningMask(kept: (0 ..< rows * columns).map { index in mask.isKept((index % rows) * columns + index / rows) })
        transposed.requested = mask.requested
        return transposed
    }
}
