import Foundation
import QSEngine
import QSLanguage

/// `prune`: weights to zero by magnitude, Wanda or SparseGPT, unstructured or N:M.
enum PruneCommand: Command {
    static let spec = CommandSpec(
        "prune", summary: "Prune the layers a pattern matches: magnitude, Wanda or SparseGPT, a share of the weights or N:M.",
        discussion: """
            `prune global 30%` prunes the 30% of smallest |w| with one threshold across every linear layer of the blocks (not the embeddings or the head); `prune PATTERN 50%` prunes that share in each matched layer; `prune PATTERN 2:4` keeps N of every M consecutive weights along the input dimension of each row (2:4 keeps 2 of every 4, the pattern sparse tensor cores run). The share is the sparsity a layer ends with, earlier pruning counted: a pruned weight is never brought back, and stays exactly zero through a later quantization (on the zero code), snapshots and restores.
            `method=wanda` (after `calibrate`) scores each weight by |w| times the L2 norm of its input channel on the calibration tokens and prunes the lowest of each output row (or of each N:M group). `method=sparsegpt` (after `calibrate`) chooses the mask block of `block` columns by block from w² / [H⁻¹]²ⱼⱼ and spreads each pruned weight's error over the columns not yet reached, as GPTQ does its rounding (`damp` of the mean Hessian diagonal added); with `bits=N` it quantizes the kept weights in the same pass, on GPTQ's grid (`group`, `sym`/`asym`, `clip`). Both run block by block, each block's inputs from the blocks before it as already pruned.
            `heads=25%` removes whole attention heads of the matched blocks (their q, k and v rows and o columns; with grouped-query attention a whole key/value group with its query heads, and says so), `neurons=30%` whole MLP neurons (gate and up rows, down columns): the tensors shrink, and evaluation, generation and `bench` run on the smaller model. Units are ranked `by=activation` (the default when a calibration set is there: the norm of the unit's input to o or down on the calibration tokens times the norm of its columns there), or `l1` or `l2` (the norm of the weights that carry the unit; the default without calibration, and far worse: removing 25% of SmolLM2's neurons by l1 took its perplexity from 33 to 1.5 million, by activation to 69). With `uniform` every block loses the same number (a configuration can describe the result); without, one ranking goes across the blocks and counts vary, every block keeping at least one.
            A layer quantized by qs is refused (prune first, then quantize). The change is one step: an error or Ctrl-C leaves every weight as it was.
            """,
        positionals: [
            ArgumentSpec("pattern", .pattern, help: "the layers, or global for one threshold across every block layer (default: layer.*)", default: .word("layer.*")),
            ArgumentSpec("amount", .any, help: "the share to prune, as 50%, or N:M as 2:4 (not with heads or neurons)"),
        ],
        options: [
            ArgumentSpec("method", .word, help: "how weights are chosen: magnitude, or wanda or sparsegpt (after calibrate)", default: .word("magnitude"), allowed: ["magnitude", "wanda", "sparsegpt"]),
            ArgumentSpec("bits", .integer, help: "SparseGPT: quantize the kept weights to this many bits in the same pass", range: 2...8),
            ArgumentSpec("group", .any, help: "SparseGPT with bits: input columns per scale, a number, channel or tensor", default: .number(128)),
            ArgumentSpec("clip", .word, help: "SparseGPT with bits: how each group's range is chosen", default: .word("none"), allowed: ["none", "mse"]),
            ArgumentSpec("damp", .number, help: "SparseGPT: dampening, a share of the mean Hessian diagonal", default: .number(0.01), range: 0...10),
            ArgumentSpec("block", .integer, help: "SparseGPT: columns per mask-selection and lazy-update block", default: .number(128), range: 1...65536),
            ArgumentSpec("exclude", .pattern, help: "layers to leave as they are"),
            ArgumentSpec("heads", .number, help: "remove this share of each matched block's attention heads, as 25%", range: 0...1),
            ArgumentSpec("neurons", .number, help: "remove this share of the matched blocks' MLP neurons, as 30%", range: 0...1),
            ArgumentSpec("by", .word, help: "heads and neurons: how units are ranked, activation (default after calibrate), l1 (default without) or l2", allowed: ["l1", "l2", "activation"]),
        ],
        flags: [
            FlagSpec("uniform", help: "heads and neurons: the same number from every block"),
            FlagSpec("sym", help: "SparseGPT with bits: symmetric grid (default)", group: "grid"),
            FlagSpec("asym", help: "SparseGPT with bits: asymmetric grid with a zero point per group", group: "grid"),
        ],
        resultFields: [
            ("layers", "layers pruned"), ("method", "magnitude, wanda or sparsegpt"), ("amount", "what was asked, as 50% or 2:4"),
            ("global", "whether one threshold went across the layers"),
            ("sparsity", "the share of the pruned layers' weights that are zero by their masks"),
            ("pruned", "weights pruned in those layers"), ("layer_params", "weights in those layers"),
            ("scheme", "SparseGPT with bits: the grid, as int4 g128 sym"),
            ("blocks", "heads and neurons: a record per block changed: block, before, after"),
            ("removed", "heads and neurons: query heads or neurons removed in all"),
            ("seconds", "time taken"), ("size_mb", "weights as held now, MB"), ("bytes", "bytes of the weights as held now"),
            ("bits_per_weight", "bits per parameter of the whole model"), ("params", "parameters"),
        ],
        examples: [
            "prune global 30%", "prune layer.* 50%", "prune layer.*.mlp.* 2:4", "prune layer.* 50% method=wanda",
            "prune layer.* 50% method=sparsegpt bits=4 group=128", "prune layer.* 2:4 method=sparsegpt",
            "prune layer.* neurons=25% uniform", "prune layer.* heads=34% by=activation",
        ])

    static let sparseGPTOptions = ["bits", "group", "clip", "damp", "block", "sym", "asym"]

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let loaded = try session.workspace.requireModel()
        let started = Date()
        if invocation.isGiven("heads") || invocation.isGiven("neurons") { return try structured(invocation, session, loaded: loaded) }
        for name in ["by", "uniform"] where invocation.isGiven(name) || invocation.has(name) {
            throw CommandError.invalidArgument(name, "\(name) is an option of heads= and neurons=")
        }
        guard invocation.isGiven("amount") else {
            throw CommandError.failed("prune needs what to prune: a share (prune layer.* 50%), N:M (prune layer.* 2:4), heads= or neurons=")
        }
        let method = try invocation.text("method")
        let global = try invocation.text("pattern") == "global"
        let entries = try Session.selectForCompression(invocation, loaded: loaded, pattern: global ? "layer.*" : nil)
        let amount = try Self.amount(invocation, entries: entries, loaded: loaded)
        // Every option is checked against the others before any work starts.
        if global {
            if case .nOfM = amount { throw CommandError.invalidArgument("amount", "N:M is a pattern within each row; global takes a share, as 30%") }
            if method != "magnitude" {
                throw CommandError.invalidArgument("method", "global is one magnitude threshold across the layers; \(method) compares weights within each output row (prune layer.* \(amount) method=\(method))")
            }
        }
        if method != "sparsegpt" {
            for name in sparseGPTOptions where invocation.isGiven(name) || invocation.has(name) {
                throw CommandError.invalidArgument(name, "\(name) is an option of method=sparsegpt")
            }
        } else if !invocation.isGiven("bits") {
            for name in ["group", "clip", "sym", "asym"] where invocation.isGiven(name) || invocation.has(name) {
                throw CommandError.invalidArgument(name, "\(name) sets SparseGPT's quantization grid: add bits=4")
            }
        }
        if method != "magnitude", let outside = entries.first(where: { CalibratedQuantizer.blockIndex($0.canonical) == nil }) {
            throw CommandError.invalidArgument("pattern", "\(method == "wanda" ? "Wanda" : "SparseGPT") prunes the linear layers of the blocks; prune \(outside.canonical) with method=magnitude")
        }
        try refuseQuantized(entries, loaded: loaded)
        let scheme = method == "sparsegpt" && invocation.isGiven("bits")
            ? try Session.scheme(invocation, entries: entries, loaded: loaded, defaultClip: .none) : nil
        let calibration = method == "magnitude" ? nil
            : try session.calibrationWindows(loaded, invocation: invocation, argument: "method", purpose: "method=\(method)")

        var results: [LayerPruning] = []
        try session.changingWeights { loaded in
            let bar = ProgressBar(label: method == "magnitude" ? "prune" : method, unit: "layers")
            defer { bar.finish() }
            switch method {
            case "wanda":
                results = try CalibratedPruner.wanda(
                    loaded.model, entries, amount: amount, windows: calibration!.windows, progress: { bar.update($0, of: $1) },
                    isCancelled: session.isCancelled)
            case "sparsegpt":
                let options = GPTQ.Options(damp: try invocation.number("damp"), blockSize: try invocation.integer("block"))
                results = try CalibratedPruner.sparseGPT(
                    loaded.model, entries, amount: amount, scheme: scheme, options: options, windows: calibration!.windows,
                    warn: { layer, message in session.warn(invocation, "\(layer): \(message)") },
                    progress: { bar.update($0, of: $1) }, isCancelled: session.isCancelled)
            default:
                results = try Pruner.magnitude(loaded.weights, entries, amount: amount, global: global, isCancelled: session.isCancelled)
            }
        }
        let seconds = Date().timeIntervalSince(started)
        let params = results.reduce(0) { $0 + $1.params }
        let pruned = results.reduce(0) { $0 + $1.pruned }
        let sparsity = params > 0 ? Double(pruned) / Double(params) : 0
        let scope = global ? "with one threshold across \(results.count) layers" : "\(results.count) layer\(results.count == 1 ? "" : "s")"
        session.output(
            "pruned \(scope) to \(amount) (\(method)\(scheme.map { ", quantized to \($0.description)" } ?? "")) in \(fmt(seconds, 1)) s: "
                + "\(fmt(sparsity * 100, 2))% of their weights zero; model \(InspectFormatting.humanBytes(loaded.heldBytes))\n")
        var record = Record([
            ("layers", .number(Double(results.count))), ("method", .string(method)), ("amount", .string(amount.description)),
            ("global", .bool(global)), ("sparsity", .number(sparsity)), ("pruned", .number(Double(pruned))),
            ("layer_params", .number(Double(params))), ("seconds", .number((seconds * 100).rounded() / 100)),
        ])
        if let scheme { record["scheme"] = .string(scheme.description) }
        for (name, value) in Session.sizeFields(loaded) { record[name] = value }
        return .record(record)
    }

    /// `prune PATTERN heads=P` and `neurons=P`: whole units removed, the tensors shrunk.
    static func structured(_ invocation: CommandInvocation, _ session: Session, loaded: LoadedModel) throws -> Value {
        let started = Date()
        if invocation.isGiven("heads") && invocation.isGiven("neurons") {
            throw CommandError.invalidArgument("neurons", "remove heads and neurons in two commands")
        }
        let argument = invocation.isGiven("heads") ? "heads" : "neurons"
        let unit: StructuredPruner.Unit = argument == "heads" ? .heads : .neurons
        for name in ["amount", "method", "exclude"] + sparseGPTOptions where invocation.isGiven(name) || invocation.has(name) {
            throw CommandError.invalidArgument(name, "\(name) does not go with \(argument)=: whole units are removed by their rank (by=)")
        }
        let pattern = try invocation.text("pattern")
        if pattern == "global" { throw CommandError.invalidArgument("pattern", "\(argument)= ranks across the blocks unless uniform is given; name the layers (layer.*)") }
        let entries = try Session.selectForCompression(invocation, loaded: loaded)
        let blocks = Array(Set(entries.compactMap { CalibratedQuantizer.blockIndex($0.canonical) })).sorted()
        guard !blocks.isEmpty else { throw CommandError.invalidArgument("pattern", "matches no layer of the blocks") }
        let fraction = try invocation.number(argument)
        let model = loaded.model
        var units = 0
        var perUnit = 1
        for block in blocks {
            try refuseQuantized(model.names.entries.filter { $0.kind.isMatrix && CalibratedQuantizer.blockIndex($0.canonical) == block }, loaded: loaded)
            do {
                let count = try StructuredPruner.unitCount(model, block: block, unit: unit)
                units += count.units
                perUnit = count.headsPerUnit
                if invocation.has("uniform") || blocks.count == 1, Pruner.prunedCount(count.units, fraction) >= count.units {
                    throw CommandError.invalidArgument(argument, "\(PruningAmount.formatPercent(fraction)) removes every \(unit == .heads ? "head" : "neuron") of layer.\(block): a block keeps at least one")
                }
            } catch let error as EngineError {
                throw CommandError.invalidArgument(argument, error.message)
            }
        }
        if !invocation.has("uniform"), Pruner.prunedCount(units, fraction) > units - blocks.count {
            throw CommandError.invalidArgument(argument, "\(PruningAmount.formatPercent(fraction)) of the \(units) \(unit == .heads ? "key/value groups" : "neurons") would leave a block with none: every block keeps at least one")
        }
        let ranking: StructuredPruner.Ranking
        if invocation.isGiven("by") {
            ranking = StructuredPruner.Ranking(rawValue: try invocation.text("by")) ?? .l1
        } else if session.workspace.calibration != nil {
            ranking = .activation
        } else {
            ranking = .l1
            session.note(invocation, "no calibration set: units are ranked by the L1 norm of their weights, which keeps far less than by=activation after 'calibrate TEXT'")
        }
        let groups = unit == .heads && perUnit > 1
        if Pruner.prunedCount(invocation.has("uniform") ? units / blocks.count : units, fraction) == 0 {
            let what = groups ? "key/value group (of \(perUnit) query heads each)" : unit == .heads ? "head" : "neuron"
            throw CommandError.invalidArgument(argument, "\(PruningAmount.formatPercent(fraction)) of \(invocation.has("uniform") ? units / blocks.count : units) removes no whole \(what)")
        }
        let calibration = ranking == .activation
            ? try session.calibrationWindows(loaded, invocation: invocation, argument: "by", purpose: "by=activation") : nil
        if groups {
            session.note(invocation, "\(loaded.name) has grouped-query attention: whole key/value groups are removed, each with its \(perUnit) query heads")
        }
        var changes: [StructuredPruner.BlockChange] = []
        try session.changingWeights { loaded in
            var squareSums: [String: [Double]] = [:]
            if let calibration {
                let bar = ProgressBar(label: "statistics", unit: "blocks")
                defer { bar.finish() }
                squareSums = try StructuredPruner.inputSquareSums(
                    model, blocks: blocks, unit: unit, windows: calibration.windows, progress: { bar.update($0, of: $1) },
                    isCancelled: session.isCancelled)
            }
            let plan = try StructuredPruner.plan(
                model, blocks: blocks, unit: unit, fraction: fraction, ranking: ranking, uniform: invocation.has("uniform"), squareSums: squareSums)
            changes = try StructuredPruner.apply(model, plan: plan, unit: unit, isCancelled: session.isCancelled)
        }
        let seconds = Date().timeIntervalSince(started)
        let removed = changes.reduce(0) { $0 + $1.before - $1.after }
        let what = unit == .heads ? "query heads" : "neurons"
        let counts = Set(changes.map(\.after))
        session.output(
            "removed \(removed) \(what) from \(changes.count) block\(changes.count == 1 ? "" : "s") (by \(ranking.rawValue)) in \(fmt(seconds, 1)) s"
                + (counts.count == 1 && changes.count == blocks.count ? ", \(counts.first!) \(what) in each" : "")
                + "; model \(InspectFormatting.humanBytes(loaded.heldBytes)), \(InspectFormatting.humanCount(loaded.parameterCount)) params\n")
        var record = Record([
            ("layers", .number(Double(entries.count))), ("method", .string(ranking.rawValue)), ("amount", .string("\(argument)=\(PruningAmount.formatPercent(fraction))")),
            ("global", .bool(!invocation.has("uniform"))), ("removed", .number(Double(removed))),
            ("blocks", .list(changes.map { .record(Record([("block", .number(Double($0.block))), ("before", .number(Double($0.before))), ("after", .number(Double($0.after)))])) })),
            ("seconds", .number((seconds * 100).rounded() / 100)),
        ])
        for (name, value) in Session.sizeFields(loaded) { record[name] = value }
        return .record(record)
    }

    /// An error at the pattern for a layer among `entries` that qs has quantized.
    static func refuseQuantized(_ entries: [LayerNames.Entry], loaded: LoadedModel) throws {
        for entry in entries {
            do {
                try Pruner.refuseQuantized(loaded.weights, entry)
            } catch let error as EngineError {
                throw CommandError.invalidArgument("pattern", "\(entry.canonical) \(error.message)")
            }
        }
    }

    /// The amount given: a share between 0% and 100%, or N:M with N < M and M dividing the
    /// input dimension of every matched layer.
    static func amount(_ invocation: CommandInvocation, entries: [LayerNames.Entry], loaded: LoadedModel) throws -> PruningAmount {
        switch invocation["amount"] {
        case .number(let fraction)?:
            guard fraction.isFinite, fraction >= 0, fraction <= 1 else {
                throw CommandError.invalidArgument("amount", "\(formatNumber(fraction * 100))% is not a share of the weights: give 0% to 100%")
            }
            return .fraction(fraction)
        case .ratio(let keep, let group)?:
            guard group > 0, keep >= 0, keep < group else {
                throw CommandError.invalidArgument("amount", "\(keep):\(group) keeps N of every M weights: N must be below M (as 2:4)")
            }
            for entry in entries {
                let columns = try loaded.weights.weight(entry.weight).inFeatures
                if columns % group != 0 {
                    throw CommandError.invalidArgument("amount", "\(keep):\(group) needs groups of \(group) along the input: \(entry.canonical) has \(columns) inputs, which \(group) does not divide")
                }
            }
            return .nOfM(keep: keep, group: group)
        default:
            throw CommandError.invalidArgument("amount", "expected a share such as 50% or N:M such as 2:4")
        }
    }
}
