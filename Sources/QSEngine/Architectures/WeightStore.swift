import Foundation

/// The weights a model computes with, by checkpoint name. Each starts as its stored tensor and
/// becomes fp32 the first time a kernel asks for it; compression replaces values by name, and
/// the replaced set can be saved and put back (snapshots).
package final class WeightStore: @unchecked Sendable {
    package let checkpoint: Checkpoint
    /// Whether every converted value is kept. A store that does not keep them holds at most
    /// `boundedCacheBytes` of the most recently used ones: the reference model of `eval kld`
    /// computes that way, block by block, so that the original weights never sit in memory as a
    /// second full fp32 copy while each block's weights are still converted only once.
    package let keepsConverted: Bool
    /// The bound on converted values when `keepsConverted` is false (256 MB: one block of a
    /// model far larger than SmolLM2, or its 113 MB embedding).
    package static let boundedCacheBytes = 256 << 20
    private var recentlyUsed: [String] = []
    private var cachedBytes = 0
    private var stored: [String: StoredTensor] = [:]
    private var converted: [String: [Float]] = [:]
    private var replaced: [String: [Float]] = [:]
    private let lock = NSLock()

    /// The replaced tensors at one moment; arrays are copy-on-write, so a snapshot costs
    /// nothing until the weights change again.
    package struct Snapshot: Sendable {
        fileprivate var replaced: [String: [Float]]
        /// Names of the tensors that differ from the checkpoint.
        package var changedTensors: [String] { replaced.keys.sorted() }
    }

    package init(checkpoint: Checkpoint, keepsConverted: Bool = true) {
        self.checkpoint = checkpoint
        self.keepsConverted = keepsConverted
        for tensor in checkpoint.tensors { stored[tensor.name] = tensor }
    }

    /// Whether the checkpoint has a tensor of this name.
    package func contains(_ name: String) -> Bool { stored[name] != nil }

    /// The stored tensor of this name.
    package func storedTensor(_ name: String) -> StoredTensor? { stored[name] }

    /// The values of a tensor as fp32: replaced values if any, else converted on first use.
    package func floats(_ name: String) throws -> [Float] {
        lock.lock()
        if let values = replaced[name] ?? converted[name] {
            if !keepsConverted, let index = recentlyUsed.firstIndex(of: name) {
                recentlyUsed.append(recentlyUsed.remove(at: index))
            }
            lock.unlock()
            return values
        }
        lock.unlock()
        guard let tensor = stored[name] else { throw missing(name) }
        let values = try Dequantize.floats(tensor)
        lock.lock()
        defer { lock.unlock() }
        converted[name] = values
        if !keepsConverted {
            recentlyUsed.append(name)
            cachedBytes += values.count * 4
            while cachedBytes > Self.boundedCacheBytes, recentlyUsed.count > 1 {
                let oldest = recentlyUsed.removeFirst()
                cachedBytes -= (converted.removeValue(forKey: oldest)?.count ?? 0) * 4
            }
        }
        return values
    }

    /// The values of a tensor as fp32 when it exists, else nil.
    package func optionalFloats(_ name: String) throws -> [Float]? {
        contains(name) ? try floats(name) : nil
    }

    /// Replaces a tensor's values (same element count).
    package func replace(_ name: String, with values: [Float]) throws {
        guard let tensor = stored[name] else { throw missing(name) }
        guard values.count == tensor.count else {
            throw EngineError(subject: name, "has \(tensor.count) elements; \(values.count) were given")
        }
        lock.lock()
        replaced[name] = values
        if let dropped = converted.removeValue(forKey: name), !keepsConverted {
            recentlyUsed.removeAll { $0 == name }
            cachedBytes -= dropped.count * 4
        }
        lock.unlock()
    }

    /// The current replacements.
    package func snapshot() -> Snapshot {
        lock.lock()
        defer { lock.unlock() }
        return Snapshot(replaced: replaced)
    }

    /// Puts back the replacements of a snapshot.
    package func restore(_ snapshot: Snapshot) {
        lock.lock()
        replaced = snapshot.replaced
        lock.unlock()
    }

    /// Drops every replacement: the weights are as loaded again.
    package func reset() {
        lock.lock()
        replaced.removeAll()
        lock.unlock()
    }

    /// Frees converted (not replaced) values; they are converted again when next needed.
    package func dropConverted() {
        lock.lock()
        converted.removeAll()
        recentlyUsed.removeAll()
        cachedBytes = 0
        lock.unlock()
    }

    private func missing(_ name: String) -> EngineError {
        EngineError(path: checkpoint.path, subject: name, "tensor is missing from the checkpoint")
    }
}
