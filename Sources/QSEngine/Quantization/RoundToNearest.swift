import Foundation

/// The grid of one group of weights: a scale and a zero point, and the code of each value.
///
/// - symmetric: scale = max|w| / (2^(b−1) − ½), codes for −2^(b−1) … 2^(b−1) − 1 stored offset
///   by the zero 2^(b−1) (what GPTQ and compressed-tensors store);
/// - asymmetric: the range [min(w, 0), max(w, 0)] (so zero is on the grid), scale =
///   (max − min) / (2^b − 1), zero = round(−min / scale);
/// - binary (1 bit): values ±mean|w|, codes 0 and 1 about the zero ½.
///
/// The scale is rounded to the scheme's scale type first, so the codes are chosen against the
/// scale that is stored and the packed weight holds exactly what a checkpoint would.
package struct GroupGrid: Sendable, Equatable {
    package var scale: Float
    package var zero: Float
    let top: Float

    /// The code nearest to `value`.
    @inline(__always)
    package func code(_ value: Float) -> UInt8 {
        if top == 1, zero == 0.5 { return value >= 0 ? 1 : 0 }
        return UInt8(min(top, max(0, (value / scale).rounded() + zero)))
    }

    /// The value a code stands for.
    @inline(__always)
    package func value(_ code: UInt8) -> Float { scale * (Float(code) - zero) }

    /// The grid of `values` (a group) under `scheme`; with `clip == .mse`, the shrink of the
    /// range (1 down to 0.5 in 20 steps) with the least squared error, ties keeping the wider.
    /// With `importance` (one weight per value, such as the mean x² of its input channel), the
    /// error is weighted by it: the squared output error a diagonal XᵀX predicts.
    package static func fit(
        _ values: UnsafeBufferPointer<Float>, _ scheme: QuantizationScheme, importance: UnsafeBufferPointer<Float>? = nil
    ) throws -> GroupGrid {
        let top = scheme.topCode
        if scheme.bits == 1 {
            var sum: Float = 0
            for v in values { sum += abs(v) }
            let mean = values.isEmpty ? 0 : sum / Float(values.count)
            return GroupGrid(scale: try storable(2 * mean, scheme), zero: 0.5, top: 1)
        }
        var low: Float = 0
        var high: Float = 0
        var finite = true
        for v in values {
            low = min(low, v)
            high = max(high, v)
            finite = finite && v.isFinite
        }
        guard finite else { throw EngineError("a weight is not finite: NaN or infinite values cannot be quantized") }
        func grid(_ shrink: Float) throws -> GroupGrid {
            if scheme.symmetric {
                let half = Float(1 << (scheme.bits - 1))
                let largest = max(-low, high) * shrink
                return GroupGrid(scale: try storable(largest > 0 ? largest / (half - 0.5) : 1, scheme), zero: half, top: top)
            }
            let (lo, hi) = (low * shrink, high * shrink)
            let scale = try storable(hi > lo ? (hi - lo) / top : 1, scheme)
            return GroupGrid(scale: scale, zero: min(top, max(0, (-lo / scale).rounded())), top: top)
        }
        var best = try grid(1)
        guard scheme.clip == .mse, high > low else { return best }
        var bestError = best.squaredError(values, importance: importance)
        for step in 1 ..< 20 {
            let candidate = try grid(1 - Float(step) * 0.025)
            let error = candidate.squaredError(values, importance: importance)
            if error < bestError {
                best = candidate
                bestError = error
            }
        }
        return best
    }

    /// Σ (w − ŵ)² over the values, each term times its importance when given.
    func squaredError(_ values: UnsafeBufferPointer<Float>, importance: UnsafeBufferPointer<Float>? = nil) -> Float {
        var sum: Float = 0
        if let importance {
            for (i, v) in values.enumerated() {
                let d = v - value(code(v))
                sum += importance[i] * d * d
            }
            return sum
        }
        for v in values {
            let d = v - value(code(v))
            sum += d * d
        }
        return sum
    }

    /// `scale` rounded to the scheme's scale type, kept above zero (a group of tiny weights
    /// must not get a scale of 0) and within its range.
    static func storable(_ scale: Float, _ scheme: QuantizationScheme) throws -> Float {
        var rounded: Float
        switch scheme.scaleType {
        case .f16: rounded = HalfConversion.f16ToFloat(HalfConversion.floatToF16(scale))
        case .bf16: rounded = HalfConversion.bf16ToFloat(HalfConversion.floatToBF16(scale))
        default: rounded = scale
        }
        if rounded == 0 { rounded = scheme.scaleType == .f16 ? HalfConversion.f16ToFloat(1) : Float.leastNormalMagnitude }
        guard rounded.isFinite else {
            throw EngineError("a scale of \(scale) does not fit \(scheme.scaleType.rawValue): the weights are too large for this scale type")
        }
        return rounded
    }
}

/// Round-to-nearest quantization: every weight to the nearest code of its group's grid.
package enum RoundToNearest {
    /// Quantizes W [rows, columns] (out×in, row-major) on the scheme's grid, rows in parallel.
    /// Where `mask` prunes an element, its code is the zero code, so it stays exactly zero (a
    /// binary grid has no zero and cannot hold a pruned weight).
    /// `importance` (one value per input column) weights the clip search's error per column.
    package static func quantize(
        _ values: [Float], rows: Int, columns: Int, scheme: QuantizationScheme, mask: PruningMask? = nil,
        importance: [Float]? = nil
    ) throws -> PackedWeight {
        if let importance, importance.count != columns {
            throw EngineError("\(importance.count) column importances for a matrix of \(columns) columns")
        }
        guard values.count == rows * columns else { throw EngineError("\(values.count) values for a \(rows)×\(columns) matrix") }
        guard (1 ... 8).contains(scheme.bits) else { throw EngineError("bits must be 1 to 8, got \(scheme.bits)") }
        if case .group(let size) = scheme.granularity, size <= 0 {
            throw EngineError("a group of \(size) columns is not a group")
        }
        if scheme.bits == 1, mask != nil { throw EngineError("a binary grid has no zero: a pruned weight cannot be binarised") }
        // A group wider than the row takes the row whole (one ragged group).
        let groupSize = min(columns, scheme.groupSize(columns: columns))
        let groupsPerRow = (columns + groupSize - 1) / groupSize
        var codes = [UInt8](repeating: 0, count: rows * columns)
        let scaleCount = scheme.granularity == .tensor ? 1 : rows * groupsPerRow
        var scales = [Float](repeating: 0, count: scaleCount)
        var zeros = [Float](repeating: 0, count: scaleCount)
        let failure = FirstError()
        let importanceValues = importance ?? []
        try importanceValues.withUnsafeBufferPointer { importanceBuffer in
        try values.withUnsafeBufferPointer { source in
            let tensorGrid = scheme.granularity == .tensor ? try GroupGrid.fit(source, scheme) : nil
            codes.withUnsafeMutableBufferPointer { codeBuffer in
                scales.withUnsafeMutableBufferPointer { scaleBuffer in
                    zeros.withUnsafeMutableBufferPointer { zeroBuffer in
                        let out = SharedPointers(
                            codes: codeBuffer.baseAddress!, scales: scaleBuffer.baseAddress!, zeros: zeroBuffer.baseAddress!,
                            importance: importance == nil ? nil : importanceBuffer.baseAddress)
                        parallelFor(rows) { range in
                            for row in range {
                                for group in 0 ..< groupsPerRow {
                                    let first = group * groupSize
                                    let last = min(columns, first + groupSize)
                                    let slice = UnsafeBufferPointer(rebasing: source[row * columns + first ..< row * columns + last])
                                    let grid: GroupGrid
                                    if let tensorGrid {
                                        grid = tensorGrid
                                    } else {
                                        do {
                                            if let importance = out.importance {
                                                grid = try GroupGrid.fit(slice, scheme, importance: UnsafeBufferPointer(start: importance + first, count: last - first))
                                            } else {
                                                grid = try GroupGrid.fit(slice, scheme)
                                            }
                                        } catch {
                                            failure.record(error)
                                            return
                                        }
                                        out.scales[row * groupsPerRow + group] = grid.scale
                                        out.zeros[row * groupsPerRow + group] = grid.zero
                                    }
                                    let zeroCode = UInt8(grid.zero.rounded(.down))
                                    for column in first ..< last {
                                        let index = row * columns + column
                                        out.codes[index] = mask?.isKept(index) == false ? zeroCode : grid.code(source[index])
                                    }
                                }
                            }
                        }
                    }
                }
            }
            if let tensorGrid {
                scales[0] = tensorGrid.scale
                zeros[0] = tensorGrid.zero
            }
        }
        }
        if let error = failure.error { throw error }
        let zero: PackedWeight.ZeroPoint = scheme.symmetric || scheme.bits == 1 ? .constant(zeros[0]) : .perGroup(zeros)
        return try PackedWeight(
            rows: rows, columns: columns, bits: scheme.bits, granularity: scheme.granularity,
            codes: PackedWeight.pack(codes, rows: rows, columns: columns, bits: scheme.bits), scales: scales,
            scaleType: scheme.scaleType, zero: zero)
    }
}

/// The output buffers of a quantization, written by worker threads that each own their rows.
struct SharedPointers: @unchecked Sendable {
    let codes: UnsafeMutablePointer<UInt8>
    let scales: UnsafeMutablePointer<Float>
    let zeros: UnsafeMutablePointer<Float>
    var importance: UnsafePointer<Float>? = nil
}

/// The first error any worker thread met.
final class FirstError: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var error: Error?

    func record(_ error: Error) {
        lock.withLock { if self.error == nil { self.error = error } }
    }
}
