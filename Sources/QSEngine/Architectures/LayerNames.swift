/// Canonical layer names, the same across architectures (`layer.3.attn.q`, `layer.3.mlp.down`,
/// `embed`, `head`), each with its checkpoint module and its kind. A canonical name names a
/// module; its tensors are the module name plus `.weight` and `.bias`.
package struct LayerNames: Sendable {
    /// One module: its canonical name, its checkpoint module name and its kind.
    package struct Entry: Sendable, Equatable {
        package var canonical: String
        package var module: String
        package var kind: LayerKind
        /// Whether the checkpoint has a bias for it.
        package var hasBias: Bool
        /// The canonical name of the layer whose input this one receives unchanged (itself when none).
        package var inputOf: String
        package var weight: String { module + ".weight" }
        package var bias: String { module + ".bias" }
    }

    /// Every module of the model, in forward order.
    package let entries: [Entry]
    private let byCanonical: [String: Entry]
    /// The tensor the vocabulary projection multiplies by: the head's own weight, or the token
    /// embedding's when the checkpoint ties them (nil for an encoder).
    package let headWeight: String?

    /// The names of a model of `config` whose checkpoint holds `tensors`, checked against the
    /// architecture's table: every tensor the configuration implies must be there with exactly
    /// the shape it implies, and every tensor there must be one of them (or a known buffer).
    /// A prefix some checkpoints put before every name (`bert.`, `transformer.`) is detected.
    /// `packed` are the quantized layers of a GPTQ or compressed-tensors checkpoint, [out, in]:
    /// they stand for the weight of their module in either layout.
    package init(config: ModelConfig, table: ModuleTable, tensors: [StoredTensor], packed: [(name: String, shape: [Int])] = [], path: String? = nil) throws {
        let tensors = tensors.map { (name: $0.name, shape: $0.shape) } + packed
        let packedNames = Set(packed.map(\.name))
        // A layer count from the file is bounded by what the file holds before anything is
        // built from it: each block needs its own tensors.
        let perBlock = table.block.filter { !$0.isOptional }.count
        if perBlock > 0, config.numHiddenLayers > tensors.count / perBlock {
            throw EngineError(
                path: path, subject: table.layerCountKey,
                "is \(config.numHiddenLayers), but the checkpoint holds \(tensors.count) tensors, too few for \(config.numHiddenLayers) blocks of \(perBlock)")
        }
        var shapes: [String: [Int]] = [:]
        for tensor in tensors { shapes[tensor.name] = tensor.shape }
        let probe = (table.before.first?.module ?? "") + ".weight"
        let prefix = table.optionalPrefixes.first { shapes[$0 + probe] != nil } ?? ""
        var specs: [(canonical: String, module: String, spec: ModuleSpec, inputOf: String)] = []
        func add(_ spec: ModuleSpec, canonical: String, module: String, inputOf: String? = nil) {
            specs.append((canonical, table.unprefixed.contains(module) ? module : prefix + module, spec, inputOf ?? canonical))
        }
        for spec in table.before { add(spec, canonical: spec.canonical, module: spec.module) }
        for index in 0 ..< config.numHiddenLayers {
            let blockPrefix = table.blockPrefix.replacingOccurrences(of: "N", with: String(index))
            for spec in table.block {
                add(
                    spec, canonical: "layer.\(index).\(spec.canonical)", module: blockPrefix + spec.module,
                    inputOf: spec.sharesInputWith.map { "layer.\(index).\($0)" })
            }
        }
        for spec in table.after { add(spec, canonical: spec.canonical, module: spec.module) }

        var used: Set<String> = []
        var entries: [Entry] = []
        func check(_ name: String, _ expected: [ModuleSpec.Dimension]) throws {
            guard let shape = shapes[name] else {
                throw EngineError(
                    path: path, subject: name,
                    "tensor is missing; a \(config.architecture) model of this configuration (\(Self.describe(expected))) needs it")
            }
            let sizes = expected.map(\.size)
            guard shape == sizes || packedNames.contains(name) && shape.count == 2 && shape == sizes.reversed() else {
                var disagreeing = zip(shape, expected).filter { $0.0 != $0.1.size }.map { "\($0.1.key) gives \($0.1.size), the tensor has \($0.0)" }
                if shape.count != sizes.count { disagreeing = ["the tensor has \(shape.count) dimensions, expected \(sizes.count)"] }
                throw EngineError(
                    path: path, subject: name,
                    "has shape \(shape), but the configuration implies \(sizes) (\(Self.describe(expected))): \(disagreeing.joined(separator: "; "))")
            }
            used.insert(name)
        }
        for (canonical, module, spec, inputOf) in specs {
            let weight = module + ".weight"
            if shapes[weight] == nil && spec.isOptional { continue }
            try check(weight, spec.weightShape)
            if let bias = spec.biasShape { try check(module + ".bias", bias) }
            entries.append(Entry(canonical: canonical, module: module, kind: spec.kind, hasBias: spec.biasShape != nil, inputOf: inputOf))
        }
        let unused = tensors.map(\.name).filter { name in
            !used.contains(name) && !table.ignoredSuffixes.contains { name.hasSuffix($0) }
        }
        if let first = unused.first {
            let more = unused.count > 1 ? " (and \(unused.count - 1) more)" : ""
            throw EngineError(
                path: path, subject: first,
                "tensor\(more) is not part of a \(config.architecture) model of this configuration (\(config.numHiddenLayers) layers); the configuration does not match the checkpoint")
        }
        self.entries = entries
        var map: [String: Entry] = [:]
        for entry in entries { map[entry.canonical] = entry }
        byCanonical = map
        headWeight = map["head"]?.weight ?? (config.architecture.isCausal ? map["embed"]?.weight : nil)
    }

    /// `num_attention_heads × head_dim = 1152, hidden_size = 576`.
    static func describe(_ dimensions: [ModuleSpec.Dimension]) -> String {
        dimensions.map { "\($0.key) = \($0.size)" }.joined(separator: ", ")
    }

    /// The entry for a canonical name.
    package func entry(_ canonical: String) -> Entry? { byCanonical[canonical] }

    /// The entry of a canonical name the architecture's own code uses; a programmer error when
    /// the table lacks it (the table and the code live in the same file).
    func required(_ canonical: String) -> Entry {
        guard let entry = byCanonical[canonical] else { preconditionFailure("no module named \(canonical)") }
        return entry
    }

    /// The module of a canonical name.
    package func module(_ canonical: String) -> String { required(canonical).module }

    /// The entries for which `predicate` holds, in forward order: what `quantize`, `prune` and
    /// `finetune` select over.
    package func select(_ predicate: (Entry) -> Bool) -> [Entry] { entries.filter(predicate) }

    /// The canonical name of a checkpoint tensor name (`model.layers.3.self_attn.q_proj.weight`
    /// → `layer.3.attn.q`), if it belongs to a known module.
    package func canonical(forTensor name: String) -> String? {
        for entry in entries where name == entry.weight || name == entry.bias { return entry.canonical }
        return nil
    }

    /// How the tensors of linear layers lie, by tensor name (for the weight store).
    package var layouts: [String: WeightLayout] {
        var layouts: [String: WeightLayout] = [:]
        for entry in entries { if case .linear(let layout) = entry.kind { layouts[entry.weight] = layout } }
        return layouts
    }
}
