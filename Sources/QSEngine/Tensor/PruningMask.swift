/// Which elements of a tensor a pruning kept: one bit per element, in the order of the tensor's
/// shape, set for kept elements. A weight with a mask holds exact zeros where the mask is
/// clear, in every form, and keeps them through later compression.
package struct PruningMask: Sendable, Equatable {
    /// The number of elements the mask covers.
    package let count: Int
    private var words: [UInt64]
    /// What the pruning that made the mask asked for, as `50%` or `2:4` (shown beside the
    /// sparsity it reached).
    package var requested: String?

    /// A mask that keeps every element.
    package init(keepingAll count: Int) {
        precondition(count >= 0, "PruningMask: negative count")
        self.count = count
        words = [UInt64](repeating: ~0, count: (count + 63) / 64)
        clearTail()
    }

    /// A mask from one flag per element (true = kept).
    package init(kept: [Bool]) {
        count = kept.count
        words = [UInt64](repeating: 0, count: (kept.count + 63) / 64)
        for (index, keep) in kept.enumerated() where keep { words[index >> 6] |= 1 << UInt64(index & 63) }
    }

    /// Whether element `index` is kept.
    @inline(__always)
    package func isKept(_ index: Int) -> Bool { words[index >> 6] & (1 << UInt64(index & 63)) != 0 }

    /// Marks element `index` as pruned.
    package mutating func prune(_ index: Int) { words[index >> 6] &= ~(1 << UInt64(index & 63)) }

    /// The number of kept elements.
    package var keptCount: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    /// The share of elements pruned (0 when the mask is empty).
    package var sparsity: Double { count == 0 ? 0 : Double(count - keptCount) / Double(count) }

    /// Sets to zero the pruned elements among `count` values that start at element `first`.
    package func apply(to values: UnsafeMutablePointer<Float>, first: Int, count: Int) {
        precondition(first >= 0 && count >= 0 && first + count <= self.count, "PruningMask: range outside the mask")
        for offset in 0 ..< count where !isKept(first + offset) { values[offset] = 0 }
    }

    private mutating func clearTail() {
        let extra = words.count * 64 - count
        if extra > 0 { words[words.count - 1] &= ~0 >> UInt64(extra) }
    }
}
