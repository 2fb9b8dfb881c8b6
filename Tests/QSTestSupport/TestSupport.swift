/// What every test target shares: a seeded generator and approximate comparisons.

import Foundation
import QSEngine

/// The tests' seeded generator is the engine's own (SplitMix64), so every run sees the same inputs.
package typealias TestGenerator = SeededGenerator

extension SeededGenerator {
    /// `count` values uniform in `range`.
    package mutating func floats(_ count: Int, in range: ClosedRange<Float> = -1 ... 1) -> [Float] {
        (0 ..< count).map { _ in Float.random(in: range, using: &self) }
    }
}

/// max |a − b| / max |b|: the error of `a` relative to the scale of `b` (0 when both are zero).
package func relativeError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "relativeError: \(a.count) values against \(b.count)")
    var difference: Float = 0
    var scale: Float = 0
    for i in a.indices {
        difference = max(difference, abs(a[i] - b[i]))
        scale = max(scale, abs(b[i]))
    }
    return scale == 0 ? difference : difference / scale
}

/// Whether `a` is within `tolerance` of `b`, relative to |b| (absolute when b is 0).
package func isClose(_ a: Double, _ b: Double, relative tolerance: Double) -> Bool {
    abs(a - b) <= tolerance * (b == 0 ? 1 : abs(b))
}

/// log softmax of one row of logits, in double precision: the plain computation that
/// measures built on head statistics are checked against.
package func logSoftmax(_ logits: Activations, row: Int) -> [Double] {
    let values = (0 ..< logits.cols).map { Double(logits.data[row * logits.cols + $0]) }
    let top = values.max() ?? 0
    let normaliser = Foundation.log(values.reduce(0) { $0 + Foundation.exp($1 - top) }) + top
    return values.map { $0 - normaliser }
}
