import Foundation

/// Matrix products with a weight in any of its forms, dispatched on the form: fp32 values
/// held in place (dense, or a stored f32 tensor) go straight to GEMM; other forms use their
/// fp32 copy in the pass's conversion cache when it takes them, and otherwise are converted a
/// tile of rows at a time into a scratch buffer and multiplied tile by tile, so that no whole
/// fp32 copy is made.
package enum WeightProduct {
    /// Values in a tile of converted rows: 4 MB. Fewer, larger GEMM calls: a 512-token prefill
    /// of SmolLM2 Q4_0 on converted tiles ran 518–565 tok/s with these against 479–490 with 1 MB
    /// tiles (the size of the L2 cache of a core here).
    static let tileElements = 1 << 20

    /// Up to this many input rows, a stored GGUF block matrix is multiplied by the block
    /// kernels one row at a time; more rows go to GEMM on converted tiles.
    package static let blockKernelRows = 2

    /// Runs `body` on consecutive ranges of the weight's rows (its first dimension) with
    /// their fp32 values, `range.count × rowLength` floats, never more than `maxRows` at a time.
    /// Values are read in place or from `conversions` where possible, else converted per tile.
    package static func forEachRowTile(
        _ weight: Weight, key: ConversionCache.Key?, conversions: ConversionCache?, maxRows: Int = .max,
        tileElements: Int = WeightProduct.tileElements, _ body: (Range<Int>, UnsafePointer<Float>) throws -> Void
    ) throws {
        let rows = weight.rowCount
        let length = weight.rowLength
        guard rows > 0, length > 0 else { return }
        let step = max(1, min(rows, maxRows))
        func slices(_ values: UnsafeBufferPointer<Float>) throws {
            var first = 0
            while first < rows {
                let last = min(rows, first + step)
                try body(first ..< last, values.baseAddress! + first * length)
                first = last
            }
        }
        if let done = try weight.withContiguousFloats({ try slices($0) }) { return done }
        if let key, let conversions, let values = try conversions.floats(key, weight) {
            try values.withUnsafeBufferPointer { try slices($0) }
            return
        }
        guard weight.convertsByRow else {
            try weight.floats().withUnsafeBufferPointer { try slices($0) }
            return
        }
        let tileRows = max(1, min(step, tileElements / length))
        var scratch = [Float](repeating: 0, count: tileRows * length)
        try scratch.withUnsafeMutableBufferPointer { tile in
            var first = 0
            while first < rows {
                let last = min(rows, first + tileRows)
                try convert(weight, first ..< last, into: tile.baseAddress!, length: length)
                try body(first ..< last, UnsafePointer(tile.baseAddress!))
                first = last
            }
        }
    }

    /// Rows `range` of `weight` into `target` (`length` values a row), split over the threads
    /// (GEMM, which reads the tile next, uses them all too).
    private static func convert(_ weight: Weight, _ range: Range<Int>, into target: UnsafeMutablePointer<Float>, length: Int) throws {
        let threads = min(ThreadCount.configured, max(1, range.count / 16))
        guard threads > 1 else { return try weight.dequantizeRows(range, into: target) }
        let out = SendableFloats(target)
        let failure = FirstError()
        parallelFor(range.count, chunks: threads) { part in
            do {
                try weight.dequantizeRows(range.lowerBound + part.lowerBound ..< range.lowerBound + part.upperBound, into: out.pointer + part.lowerBound * length)
            } catch { failure.set(error) }
        }
        if let error = failure.error { throw error }
    }

    private struct SendableFloats: @unchecked Sendable {
        let pointer: UnsafeMutablePointer<Float>
        init(_ pointer: UnsafeMutablePointer<Float>) { self.pointer = pointer }
    }

    /// The first error thrown by any part of a parallel loop.
    private final class FirstError: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: Error?
        var error: Error? { lock.withLock { stored } }
        func set(_ error: Error) { lock.withLock { if stored == nil { stored = error } } }
    }

    /// y = x · Wᵀ (+ bias) for a linear weight W of `weight.layout`, x [rows, in].
    package static func linear(
        _ x: Activations, _ weight: Weight, bias: [Float]?, key: ConversionCache.Key?, conversions: ConversionCache?,
        tileElements: Int = WeightProduct.tileElements
    ) throws -> Activations {
        let out = weight.outFeatures
        let inputs = weight.inFeatures
        guard x.cols == inputs, weight.shape.count == 2 else {
            throw EngineError(subject: key?.name, "a weight of shape \(weight.shape) cannot take inputs of \(x.cols) features")
        }
        if let bias, bias.count != out {
            throw EngineError(subject: key?.name, "has \(out) outputs but a bias of \(bias.count)")
        }
        var y = Activations(rows: x.rows, cols: out)
        guard x.rows > 0 else { return y }
        // Decoding (a row or two): the weight as held, when a decode kernel takes it.
        if x.rows <= blockKernelRows, try decode(x, weight, bias: bias, into: &y) { return y }
        try y.data.withUnsafeMutableBufferPointer { c in
            if let bias {
                bias.withUnsafeBufferPointer { b in
                    for r in 0 ..< x.rows { (c.baseAddress! + r * out).update(from: b.baseAddress!, count: out) }
                }
            }
            try x.data.withUnsafeBufferPointer { a in
                try forEachRowTile(weight, key: key, conversions: conversions, tileElements: tileElements) { range, tile in
                    switch weight.layout {
                    case .outIn:
                        // Rows of W are outputs: this tile gives the columns `range` of y.
                        GEMM.sgemm(
                            transA: false, transB: true, m: x.rows, n: range.count, k: inputs, alpha: 1,
                            a: a.baseAddress!, lda: inputs, b: tile, ldb: inputs,
                            beta: bias == nil ? 0 : 1, c: c.baseAddress! + range.lowerBound, ldc: out)
                    case .inOut:
                        // Rows of W are inputs: this tile adds the products of those input columns.
                        let accumulate = bias != nil || range.lowerBound > 0
                        GEMM.sgemm(
                            transA: false, transB: false, m: x.rows, n: out, k: range.count, alpha: 1,
                            a: a.baseAddress! + range.lowerBound, lda: inputs, b: tile, ldb: out,
                            beta: accumulate ? 1 : 0, c: c.baseAddress!, ldc: out)
                    }
                }
            }
        }
        return y
    }

    /// y = x · Wᵀ (+ bias) row by row through the decode kernels, on the weight as held: stored
    /// GGUF blocks or fp32, packed codes, or fp32 values held in place. False, with y untouched,
    /// when no kernel takes the weight.
    private static func decode(_ x: Activations, _ weight: Weight, bias: [Float]?, into y: inout Activations) throws -> Bool {
        let out = y.cols, inputs = x.cols
        func rows(_ product: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) throws -> Void) rethrows {
            try y.data.withUnsafeMutableBufferPointer { c in
                try x.data.withUnsafeBufferPointer { a in
                    for r in 0 ..< x.rows {
                        let row = c.baseAddress! + r * out
                        try product(a.baseAddress! + r * inputs, row)
                        if let bias { for o in 0 ..< out { row[o] += bias[o] } }
                    }
                }
            }
        }
        if BlockKernels.takes(weight) {
            try rows { try BlockKernels.multiply(weight, $0, into: $1) }
            return true
        }
        if BlockKernels.takesPacked(weight) {
            try rows { try BlockKernels.multiply(packed: weight, $0, into: $1) }
            return true
        }
        guard weight.layout == .outIn else { return false }
        return weight.withContiguousFloats { w in
            rows { BlockKernels.multiply(floats: w.baseAddress!, rows: out, columns: inputs, $0, into: $1) }
        } != nil
    }

    /// Rows `ids` of a table (an embedding), converted one row at a time where the form allows
    /// (cheaper than any whole copy, even for one token).
    package static func gatherRows(
        _ weight: Weight, ids: [Int], key: ConversionCache.Key?, conversions: ConversionCache?
    ) throws -> Activations {
        let width = weight.rowLength
        var x = Activations(rows: ids.count, cols: width)
        guard !ids.isEmpty else { return x }
        if let bad = ids.first(where: { $0 < 0 || $0 >= weight.rowCount }) {
            throw EngineError(subject: key?.name, "row \(bad) is outside the table's \(weight.rowCount) rows")
        }
        try x.data.withUnsafeMutableBufferPointer { out in
            func copy(_ table: UnsafeBufferPointer<Float>) {
                for (r, id) in ids.enumerated() { (out.baseAddress! + r * width).update(from: table.baseAddress! + id * width, count: width) }
            }
            if weight.withContiguousFloats(copy) != nil { return }
            if weight.convertsByRow {
                for (r, id) in ids.enumerated() { try weight.dequantizeRows(id ..< id + 1, into: out.baseAddress! + r * width) }
            } else if let key, let conversions, let values = try conversions.floats(key, weight) {
                values.withUnsafeBufferPointer(copy)
            } else {
                try weight.floats().withUnsafeBufferPointer(copy)
            }
        }
        return x
    }
}
