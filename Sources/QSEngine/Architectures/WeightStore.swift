import Foundation

/// The weights a model computes with, by checkpoint name. Each starts as its stored tensor and
/// becomes fp32 the first time a kernel asks for it; compression replaces values by name, and
/// the replaced set can be saved and put back (snapshots).
package final class WeightStore: @unchecked Sendable {
    package let checkpoint: Checkpoint
    /// Whether converted values are kept. A store that keeps nothing converts each tensor on
    /// every use: the reference model of `eval kld` computes that way, so that the original
    /// weights never sit in memory as a second full fp32 copy.
    package let keepsConverted: Bool
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

    /// The shape of a tensor (outermost first).
    package func shape(_ name: String) throws -> [Int] {
        guard let tensor = stored[name] else { throw missing(name) }
        return tensor.shape
    }

    /// The values of a tensor as fp32: replaced values if any, else converted on first use.
    package func floats(_ name: String) throws -> [Float] {
        lock.lock()
        if let values = replaced[name] ?? converted[name] {
            lock.unlock()
            return values
        }
        lock.unlock()
        guard let tensor = stored[name] else { throw missing(name) }
        let values = try Dequantize.floats(tensor)
        guard keepsConverted else { return values }
        lock.lock()
        converted[name] = values
        lock.unlock()
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
        converted.removeValue(forKey: name)
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
        lock.unlock()
    }

    private func missing(_ name: String) -> EngineError {
        EngineError(path: checkpoint.path, subject: name, "tensor is missing from the checkpoint")
    }
}
