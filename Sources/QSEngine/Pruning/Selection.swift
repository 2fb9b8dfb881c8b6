/// Exact k-th smallest selection over non-negative scores held in several buffers, by radix on
/// the bits of the floats (for non-negative IEEE floats the bit patterns order as the values
/// do): two counting passes of 65,536 bins over the scores, no copy and no sort, whatever their
/// number (a global threshold over every linear layer of a model reads 100 M scores twice).
/// NaN scores order above +∞, so they are kept.
package enum Selection {
    /// What pruning the `count` smallest scores means: every score below `value`, and the first
    /// `equalPruned` scores equal to it, in buffer order then index order (so that ties are
    /// settled the same way every time).
    package struct Threshold: Sendable, Equatable {
        package var value: Float
        package var equalPruned: Int
    }

    /// The threshold that prunes exactly `count` of the scores (0 ≤ count ≤ their number); nil
    /// when `count` is 0.
    package static func threshold(pruning count: Int, of buffers: [UnsafeBufferPointer<Float>]) -> Threshold? {
        let total = buffers.reduce(0) { $0 + $1.count }
        precondition(count >= 0 && count <= total, "Selection: \(count) of \(total) scores")
        guard count > 0 else { return nil }
        // Pass 1: the high 16 bits.
        var bins = [Int](repeating: 0, count: 65_536)
        for buffer in buffers { for score in buffer { bins[Int(key(score) >> 16)] += 1 } }
        var remaining = count
        var high = 0
        while bins[high] < remaining {
            remaining -= bins[high]
            high += 1
        }
        // Pass 2: the low 16 bits of the scores in that bin.
        for i in bins.indices { bins[i] = 0 }
        for buffer in buffers {
            for score in buffer {
                let k = key(score)
                if Int(k >> 16) == high { bins[Int(k & 0xFFFF)] += 1 }
            }
        }
        var low = 0
        while bins[low] < remaining {
            remaining -= bins[low]
            low += 1
        }
        let bits = UInt32(high) << 16 | UInt32(low)
        return Threshold(value: Float(bitPattern: bits == 0xFFFF_FFFF ? 0x7FC0_0000 : bits), equalPruned: remaining)
    }

    /// The order key of a non-negative score: its bits, NaN above everything.
    @inline(__always)
    static func key(_ score: Float) -> UInt32 {
        score.isNaN ? 0xFFFF_FFFF : score.bitPattern & 0x7FFF_FFFF
    }

    /// Calls `body` with the index of each score the threshold prunes, in order; `equalLeft`
    /// counts down the equal scores still to prune across calls.
    package static func forEachPruned(
        _ scores: UnsafeBufferPointer<Float>, below threshold: Threshold, equalLeft: inout Int, _ body: (Int) -> Void
    ) {
        let bound = key(threshold.value)
        for (index, score) in scores.enumerated() {
            let k = key(score)
            if k < bound {
                body(index)
            } else if k == bound, equalLeft > 0 {
                body(index)
                equalLeft -= 1
            }
        }
    }

    /// Marks pruned in `mask` (covering `scores` from element `first`) the scores the threshold
    /// prunes; `equalLeft` counts down the equal scores still to prune across calls.
    package static func prune(
        _ scores: UnsafeBufferPointer<Float>, below threshold: Threshold, equalLeft: inout Int, into mask: inout PruningMask, first: Int = 0
    ) {
        forEachPruned(scores, below: threshold, equalLeft: &equalLeft) { mask.prune(first + $0) }
    }

    /// The `count` indices of `indices` with the lowest scores, ties by index: a small group's
    /// choice (an N:M group), by sorting it.
    package static func lowest(_ count: Int, of indices: Range<Int>, score: (Int) -> Float) -> ArraySlice<Int> {
        let keys = indices.map { key(score($0)) }
        return indices.sorted { a, b in
            let ka = keys[a - indices.lowerBound], kb = keys[b - indices.lowerBound]
            return ka < kb || (ka == kb && a < b)
        }.prefix(count)
    }
}
