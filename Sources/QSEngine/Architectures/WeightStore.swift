import Foundation

/// The weights a model computes with, by checkpoint name: each is the checkpoint's stored
/// tensor until compression gives it another form (dense, packed, masked). The changed set
/// can be saved and put back (snapshots); arrays are copy-on-write, so a snapshot costs
/// nothing until the weights change again.
package final class WeightStore: @unchecked Sendable {
    package let checkpoint: Checkpoint
    /// Tensors of at most this many elements (norms, biases, small tables) are converted to
    /// fp32 once and kept; larger ones are converted by the kernels as they need them.
    package static let keptVectorElements = 1 << 20
    private var original: [String: Weight] = [:]
    private var changed: [String: Versioned] = [:]
    private var vectors: [String: (version: Int, values: [Float])] = [:]
    /// Linear weights whose inputs are quantized (simulated) before the product, by tensor name.
    private var activations: [String: ActivationQuantization] = [:]
    private var lastVersion = 0
    private let lock = NSLock()

    /// A weight at the version it was given (0: as loaded).
    fileprivate struct Versioned: Sendable {
        var weight: Weight
        var version: Int
        /// For a quantized or cast weight, the form it was made from (stored, dense or scaled,
        /// never itself a quantization): what a later quantization starts from.
        var origin: Weight?
    }

    /// The changed weights at one moment.
    package struct Snapshot: Sendable {
        fileprivate var changed: [String: Versioned]
        fileprivate var activations: [String: ActivationQuantization] = [:]
        /// Names of the tensors that differ from the checkpoint.
        package var changedTensors: [String] { changed.keys.sorted() }
    }

    /// The checkpoint's tensors as stored; `layouts` names the linear weights whose tensors hold
    /// the matrix in×out (GPT-2's Conv1D).
    package init(checkpoint: Checkpoint, layouts: [String: WeightLayout] = [:]) {
        self.checkpoint = checkpoint
        for tensor in checkpoint.tensors {
            original[tensor.name] = Weight(stored: tensor, layout: layouts[tensor.name] ?? .outIn)
        }
        // A quantized checkpoint's layers (GPTQ, compressed-tensors) are packed as loaded.
        for (name, packed) in checkpoint.packedWeights {
            original[name] = try? Weight(packed: packed)
        }
        // A saved pruned model's masks are its zeros.
        for (module, structure) in checkpoint.prunedModules {
            let name = module + ".weight"
            guard let weight = original[name], let values = try? weight.floats() else { continue }
            var mask = PruningMask(kept: values.map { $0 != 0 })
            mask.requested = structure
            if let masked = try? weight.withMask(mask) { original[name] = masked }
        }
    }

    /// Every tensor's name, in checkpoint order.
    package var names: [String] { checkpoint.tensors.map(\.name) + checkpoint.packedWeights.map(\.name) }

    /// Whether the checkpoint has a tensor of this name.
    package func contains(_ name: String) -> Bool { original[name] != nil }

    /// The stored tensor of this name.
    package func storedTensor(_ name: String) -> StoredTensor? {
        guard case .stored(let tensor)? = original[name]?.form else { return nil }
        return tensor
    }

    /// The weight of this name in its current form.
    package func weight(_ name: String) throws -> Weight {
        lock.lock()
        defer { lock.unlock() }
        if let current = changed[name] { return current.weight }
        guard let weight = original[name] else { throw missing(name) }
        return weight
    }

    /// The weight of this name as the checkpoint stores it.
    package func original(_ name: String) throws -> Weight {
        guard let weight = original[name] else { throw missing(name) }
        return weight
    }

    /// The form a later quantization of `name` starts from: the current form when it is not a
    /// quantization or cast, else the form it was made from (as loaded, pruned or smoothed).
    package func origin(_ name: String) throws -> Weight {
        lock.lock()
        defer { lock.unlock() }
        if let current = changed[name] { return current.weight.isQuantized ? current.origin ?? original[name]! : current.weight }
        guard let weight = original[name] else { throw missing(name) }
        return weight
    }

    /// The key that names the weight's current form in a conversion cache.
    package func key(_ name: String) -> ConversionCache.Key {
        lock.lock()
        defer { lock.unlock() }
        return ConversionCache.Key(name: name, version: changed[name]?.version ?? 0)
    }

    /// The values of a tensor as fp32 in its current form; small tensors are converted once.
    package func floats(_ name: String) throws -> [Float] {
        let key = key(name)
        lock.lock()
        if let kept = vectors[name], kept.version == key.version {
            lock.unlock()
            return kept.values
        }
        lock.unlock()
        let weight = try weight(name)
        let values = try weight.floats()
        if values.count <= Self.keptVectorElements {
            lock.lock()
            vectors[name] = (key.version, values)
            lock.unlock()
        }
        return values
    }

    /// The values of a tensor as fp32 when it exists, else nil.
    package func optionalFloats(_ name: String) throws -> [Float]? {
        contains(name) ? try floats(name) : nil
    }

    /// Gives a tensor a new form: of the same shape, or for a matrix the same out×in matrix in
    /// the other layout (a packed form of GPT-2's in×out Conv1D weights is out×in).
    package func set(_ name: String, _ weight: Weight) throws {
        // Against the current shape: structured pruning may have made the tensor smaller.
        let stored = try self.weight(name)
        let sameMatrix = weight.shape.count == 2 && stored.shape.count == 2
            && weight.outFeatures == stored.outFeatures && weight.inFeatures == stored.inFeatures
        guard weight.shape == stored.shape && weight.layout == stored.layout || sameMatrix else {
            throw EngineError(subject: name, "has shape \(stored.shape); a weight of shape \(weight.shape) was given")
        }
        lock.lock()
        lastVersion += 1
        var origin: Weight?
        if weight.isQuantized {
            let previous = changed[name]
            origin = previous.map { $0.weight.isQuantized ? $0.origin : $0.weight } ?? nil
        }
        changed[name] = Versioned(weight: weight, version: lastVersion, origin: origin)
        vectors[name] = nil
        lock.unlock()
    }

    /// How the inputs of the linear weight `name` are quantized before its product, if they are.
    package func activationQuantization(_ name: String) -> ActivationQuantization? {
        lock.lock()
        defer { lock.unlock() }
        return activations.isEmpty ? nil : activations[name]
    }

    /// Quantizes (simulated) the inputs of the linear weight `name` from now on, or no longer (nil).
    package func setActivationQuantization(_ name: String, _ scheme: ActivationQuantization?) throws {
        guard original[name] != nil else { throw missing(name) }
        lock.lock()
        activations[name] = scheme
        lock.unlock()
    }

    /// Gives a tensor a new form of another shape: structured pruning's smaller tensors (the
    /// layers computing with it take their sizes from the shapes). Kept by snapshots, undone by
    /// `reset`, like any change.
    package func resize(_ name: String, _ weight: Weight) throws {
        guard original[name] != nil else { throw missing(name) }
        lock.lock()
        lastVersion += 1
        changed[name] = Versioned(weight: weight, version: lastVersion, origin: nil)
        vectors[name] = nil
        lock.unlock()
    }

    /// Replaces a tensor's values with fp32 values (same element count, same layout).
    package func replace(_ name: String, with values: [Float]) throws {
        let stored = try weight(name)
        guard values.count == stored.count else {
            throw EngineError(subject: name, "has \(stored.count) elements; \(values.count) were given")
        }
        try set(name, Weight(dense: values, shape: stored.shape, layout: stored.layout))
    }

    /// The current changes.
    package func snapshot() -> Snapshot {
        lock.lock()
        defer { lock.unlock() }
        return Snapshot(changed: changed, activations: activations)
    }

    /// Puts back the changes of a snapshot.
    package func restore(_ snapshot: Snapshot) {
        lock.lock()
        changed = snapshot.changed
        activations = snapshot.activations
        lock.unlock()
    }

    /// Drops every change: the weights are as loaded again.
    package func reset() {
        lock.lock()
        changed.removeAll()
        activations.removeAll()
        lock.unlock()
    }

    /// Whether any weight differs from the checkpoint.
    package var isModified: Bool {
        lock.lock()
        defer { lock.unlock() }
        return !changed.isEmpty || !activations.isEmpty
    }

    /// Names of the tensors that differ from the checkpoint, sorted.
    package var changedTensors: [String] { snapshot().changedTensors }

    /// Elements of every tensor in its current form (fewer after structured pruning).
    package var parameterCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return original.reduce(0) { $0 + (changed[$1.key]?.weight ?? $1.value).count }
    }

    /// Bytes of every weight in its current form.
    package var heldBytes: Int {
        lock.lock()
        defer { lock.unlock() }
        return original.reduce(0) { $0 + (changed[$1.key]?.weight ?? $1.value).byteCount }
    }

    /// Runs `body`, which changes weights, as a transaction: when it throws (an error, a
    /// cancellation) or leaves a changed weight with a value that is not finite, every weight is
    /// put back as it was before `body` ran, and the error is thrown on.
    package func transaction<R>(_ body: () throws -> R) throws -> R {
        let before = snapshot()
        do {
            let result = try body()
            for name in changes(since: before) {
                if let (index, value) = try weight(name).firstNonFinite() {
                    throw EngineError(
                        path: checkpoint.path, subject: name,
                        "element \(index) became \(value); the weights were put back as they were before the command")
                }
            }
            return result
        } catch {
            restore(before)
            throw error
        }
    }

    /// The tensors whose form differs from the one they had in `snapshot`.
    package func changes(since snapshot: Snapshot) -> [String] {
        lock.lock()
        defer { lock.unlock() }
        let names = Set(changed.keys).union(snapshot.changed.keys)
        return names.filter { changed[$0]?.version != snapshot.changed[$0]?.version }.sorted()
    }

    private func missing(_ name: String) -> EngineError {
        EngineError(path: checkpoint.path, subject: name, "tensor is missing from the checkpoint")
    }
}
