import Foundation

/// fp32 copies of weights that are not held as fp32 (stored GGUF blocks, f16, packed codes),
/// kept for the length of one piece of work so that each is converted once for it: one
/// evaluation (all windows run block by block, each block converted once per group), or one
/// generation (every token reuses the copies). A bounded cache holds at most `budgetBytes`,
/// least recently used first out, and never takes a weight larger than `largestBytes`: those
/// are multiplied a tile at a time instead.
package final class ConversionCache: @unchecked Sendable {
    /// A weight at one version: a changed weight is a new key, so a copy is never stale.
    package struct Key: Hashable, Sendable {
        package var name: String
        package var version: Int
    }

    package let budgetBytes: Int
    package let largestBytes: Int
    private var values: [Key: [Float]] = [:]
    private var recentlyUsed: [Key] = []
    private var heldBytes = 0
    private let lock = NSLock()

    /// A cache of at most `budgetBytes` that takes weights of up to `largestBytes` (default: half the budget).
    package init(budgetBytes: Int, largestBytes: Int? = nil) {
        self.budgetBytes = budgetBytes
        self.largestBytes = largestBytes ?? budgetBytes / 2
    }

    /// Whether weights the decode kernels multiply as held (stored GGUF blocks, fp32, packed
    /// codes) are left out: many-row products convert them a tile at a time instead, so memory
    /// stays near the size of the weights as held.
    package private(set) var leavesKernelWeights = false

    /// A cache that keeps every weight it converts.
    package static func unbounded() -> ConversionCache { ConversionCache(budgetBytes: .max, largestBytes: .max) }

    /// Generation's cache: every weight the decode kernels do not take is converted once and
    /// kept; those they take are never copied (prefill converts them by tiles).
    package static func generation() -> ConversionCache {
        let cache = ConversionCache(budgetBytes: .max, largestBytes: .max)
        cache.leavesKernelWeights = true
        return cache
    }

    /// The budget of an evaluation: about 8 blocks of SmolLM2 (14 MB each in fp32), and no
    /// vocabulary-sized matrix (113 MB), which goes by tiles once per window instead.
    package static let evaluationBudget = 128 << 20

    /// The fp32 values of `weight`, converted on first use; nil when the weight is larger than
    /// this cache takes.
    package func floats(_ key: Key, _ weight: Weight) throws -> [Float]? {
        let bytes = weight.count * 4
        guard bytes <= largestBytes else { return nil }
        if leavesKernelWeights, BlockKernels.takes(weight) || BlockKernels.takesPacked(weight) { return nil }
        lock.lock()
        if let cached = values[key] {
            if let index = recentlyUsed.firstIndex(of: key) { recentlyUsed.append(recentlyUsed.remove(at: index)) }
            lock.unlock()
            return cached
        }
        lock.unlock()
        let converted = try weight.floats()
        lock.lock()
        defer { lock.unlock() }
        if values[key] == nil {
            values[key] = converted
            recentlyUsed.append(key)
            heldBytes += bytes
        }
        while heldBytes > budgetBytes, recentlyUsed.count > 1 {
            let oldest = recentlyUsed.removeFirst()
            heldBytes -= (values.removeValue(forKey: oldest)?.count ?? 0) * 4
        }
        return converted
    }

    /// Bytes held now.
    package var bytes: Int {
        lock.lock()
        defer { lock.unlock() }
        return heldBytes
    }
}
