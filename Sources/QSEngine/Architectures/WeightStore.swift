import Foundation

/// The weights a model computes with, by checkpoint name. Each starts as its stored tensor and
/// becomes fp32 the first time a kernel asks for it; compression replaces values by name.
package final class WeightStore: @unchecked Sendable {
    package let checkpoint: Checkpoint
    private var stored: [String: StoredTensor] = [:]
    private var cache: [String: [Float]] = [:]
    private let lock = NSLock()

    /// Whether converted values are kept. A store that keeps nothing converts each tensor on
    /// every use: the reference model of `eval kld` computes that way, so that the original
    /// weights never sit in memory as a second full fp32 copy.
    package let keepsConverted: Bool

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

    /// The values of a tensor as fp32, converted on first use and kept.
    package func floats(_ name: String) throws -> [Float] {
        lock.lock()
        if let values = cache[name] {
            lock.unlock()
            return values
        }
        lock.unlock()
        guard let tensor = stored[name] else { throw missing(name) }
        let values = try Dequantize.floats(tensor)
        guard keepsConverted else { return values }
        lock.lock()
        cache[name] = values
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
        cache[name] = values
        lock.unlock()
    }

    /// Forgets every converted or replaced value: the weights are as loaded again.
    package func reset() {
        lock.lock()
        cache.removeAll()
        lock.unlock()
    }

    private func missing(_ name: String) -> EngineError {
        EngineError(path: checkpoint.path, subject: name, "tensor is missing from the checkpoint")
    }
}
