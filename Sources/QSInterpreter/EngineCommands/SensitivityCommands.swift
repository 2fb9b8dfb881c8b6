import Foundation
import QSEngine
import QSLanguage

/// `sensitivity`: how far quantizing each unit alone (a layer, a block's layers, every layer of
/// one type) moves the model's predictions, most sensitive first.
enum SensitivityCommand: Command {
    static let spec = CommandSpec(
        "sensitivity", summary: "Rank layers by how far quantizing each alone moves the model's predictions.",
        discussion: """
            Quantizes one unit at a time by round-to-nearest on the grid `bits`, `group`, `clip` and `sym`/`asym` give (as `quantize` would), the rest of the model left as it is now, and measures the damage against the model as it is now on the first `seqlen` tokens of the first `samples` windows of the calibration set, or with `text=` on `samples` consecutive windows of `seqlen` tokens from the start of that text. Every token but the first of a window is scored (an encoder: every token). Many short windows measure more steadily than a few long ones: the KL divergence of a layer is heavy-tailed over the text.
            `metric=kld` (the default for a causal model) scores a unit by the mean KL(now ‖ with the unit quantized) per token, `metric=ppl` by the change in perplexity; the record has both. An encoder has no next-token predictions: `metric=cosine` (its default, and its only metric) scores a unit by the mean 1 − cosine between each output row (the hidden states a sentence embedding averages) now and with the unit quantized. `by=layer` makes each matched linear layer a unit, `by=block` the matched layers of one block together (named `layer.N.*`), `by=type` the matched layers of one kind in every block (named `layer.*.attn.q`); the embedding and the head, when the pattern names them, are units of their own.
            Each window's hidden states at the input of every block are kept, so a unit is run from its first block on, and the KL divergence is exact without keeping any logits. The weights are as they were afterwards, and after Ctrl-C. Prints the units most sensitive first; the record's `units` are in that order, each named by a pattern that selects it (`for u in s.units { ... }`).
            """,
        positionals: [ArgumentSpec("pattern", .pattern, help: "the layers (default: every linear layer)", default: .word("layer.*"))],
        options: [
            ArgumentSpec("bits", .integer, help: "bits per code (1 binarises)", default: .number(4), range: 1...8),
            ArgumentSpec("group", .any, help: "input columns per scale: a number, channel or tensor", default: .number(128)),
            ArgumentSpec("clip", .word, help: "how each group's range is chosen", default: .word("mse"), allowed: ["none", "mse"]),
            ArgumentSpec("metric", .word, help: "what scores a unit: kld or ppl (causal models), cosine (encoders); default kld, or cosine for an encoder", allowed: ["kld", "ppl", "cosine"]),
            ArgumentSpec("by", .word, help: "the units: layer, block or type", default: .word("layer"), allowed: ["layer", "block", "type"]),
            ArgumentSpec("samples", .integer, help: "windows measured on", default: .number(Double(Session.sensitivitySamples)), range: 1...100_000),
            ArgumentSpec("text", .path, help: "a text to measure on instead of the calibration set"),
            ArgumentSpec("seqlen", .integer, help: "tokens per window: the first of each calibration window, or windows of text", default: .number(Double(Session.sensitivityLength)), range: 2...1_000_000),
            ArgumentSpec("exclude", .pattern, help: "layers to leave out"),
        ],
        flags: [
            FlagSpec("sym", help: "symmetric grid, zero at the centre (default)", group: "grid"),
            FlagSpec("asym", help: "asymmetric grid with a zero point per group", group: "grid"),
        ],
        resultFields: [
            ("units", "a record per unit, most sensitive first: unit, layers, score, kld and ppl (causal models) or cosine_loss (encoders), bits_per_weight, rank"),
            ("metric", "kld, ppl or cosine"), ("by", "layer, block or type"), ("scheme", "the grid, as int4 g128 sym"),
            ("tokens", "tokens scored per unit"), ("base_ppl", "perplexity of the model as it is now on those tokens (causal models)"),
            ("seconds", "time taken"),
        ],
        examples: [
            "sensitivity", "sensitivity layer.* bits=3 group=64 by=block", "sensitivity layer.*.mlp.* metric=ppl text=shakespeare samples=4",
            "let s = sensitivity by=type\nprint s.units[0].unit",
        ])

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let loaded = try session.workspace.requireModel()
        let model = loaded.model
        let causal = model is any CausalLanguageModel
        let metric = try Session.sensitivityMetric(invocation, loaded: loaded)
        let entries = try Session.selectForCompression(invocation, loaded: loaded)
        let scheme = try Session.scheme(invocation, entries: entries, loaded: loaded, defaultClip: .mse)
        let windows = try Session.sensitivityWindows(invocation, loaded: loaded, session: session)
        let by = try invocation.text("by")
        let units = Session.sensitivityUnits(entries, by: by)
        let started = Date()
        let changes = try Session.quantizedChanges(units, scheme: scheme, loaded: loaded, isCancelled: session.isCancelled)
        let bar = ProgressBar(label: "sensitivity", unit: "units")
        defer { bar.finish() }
        let damages = try Sensitivity.measure(
            model, changes: changes, windows: windows, progress: { bar.update($0, of: $1) }, isCancelled: session.isCancelled)
        bar.finish()
        let seconds = Date().timeIntervalSince(started)

        struct Row {
            var unit: String
            var layers: Int
            var damage: PredictionDamage
            var bitsPerWeight: Double
            var score: Double
        }
        var rows: [Row] = []
        for (index, unit) in units.enumerated() {
            let damage = damages[index]
            let weights = changes[index].weights
            let bytes = weights.reduce(0) { $0 + $1.weight.byteCount }
            let count = weights.reduce(0) { $0 + $1.weight.count }
            // Neither measure is ever negative; below 0 is rounding in a unit that changed nothing.
            let divergence = max(0, damage.meanDivergence)
            rows.append(Row(
                unit: unit.name, layers: unit.entries.count, damage: damage, bitsPerWeight: Double(bytes) * 8 / Double(max(count, 1)),
                score: metric == "ppl" ? damage.perplexity - damage.referencePerplexity : divergence))
        }
        rows.sort { $0.score > $1.score }
        let tokens = damages.first?.tokens ?? 0
        let basePPL = damages.first?.referencePerplexity ?? 0
        session.output(
            "sensitivity  \(scheme.description), by \(by), \(metric) on \(windows.count) window\(windows.count == 1 ? "" : "s") (\(tokens) tokens scored)"
                + (causal ? ", ppl \(fmt(basePPL, 4)) as now" : "") + "; \(rows.count) unit\(rows.count == 1 ? "" : "s") in \(fmt(seconds, 1)) s\n")
        let header = causal ? ["rank", "unit", "KLD", "ppl", "change", "bits/w"] : ["rank", "unit", "1 − cos", "bits/w"]
        let table = [header] + rows.enumerated().map { rank, row in
            let divergence = String(format: "%.4e", max(0, row.damage.meanDivergence))
            guard causal else { return [String(rank + 1), row.unit, divergence, fmt(row.bitsPerWeight, 3)] }
            let change = row.damage.perplexity / row.damage.referencePerplexity - 1
            return [
                String(rank + 1), row.unit, divergence, fmt(row.damage.perplexity, 4),
                (change >= 0 ? "+" : "") + fmt(change * 100, 3) + "%", fmt(row.bitsPerWeight, 3),
            ]
        }
        // The bars: each unit's score against the most sensitive one's.
        let largest = rows.map(\.score).filter(\.isFinite).max() ?? 0
        let bars: [String?] = rows.map { TerminalChart.bar($0.score, maximum: largest) }
        let lines = Session.alignedTable(table, leftColumns: [1]).split(separator: "\n").map(String.init)
        let chartHeader = "to the most sensitive"
        for line in TerminalChart.besides(lines, header: chartHeader, bars: bars, colour: session.colour) { session.output(line + "\n") }
        let records: [Value] = rows.enumerated().map { rank, row in
            let measures: [(String, Value)] = causal
                ? [("kld", .number(max(0, row.damage.meanDivergence))), ("ppl", .number(row.damage.perplexity))]
                : [("cosine_loss", .number(max(0, row.damage.meanDivergence)))]
            return .record(Record([("unit", .string(row.unit)), ("layers", .number(Double(row.layers))), ("score", .number(row.score))] + measures + [
                ("bits_per_weight", .number((row.bitsPerWeight * 1000).rounded() / 1000)), ("rank", .number(Double(rank + 1))),
            ]))
        }
        var record = Record([
            ("units", .list(records)), ("metric", .string(metric)), ("by", .string(by)), ("scheme", .string(scheme.description)),
            ("tokens", .number(Double(tokens))), ("seconds", .number((seconds * 100).rounded() / 100)),
        ])
        if causal { record["base_ppl"] = .number(basePPL) }
        return .record(record)
    }
}

/// `autoquant`: a bit width per layer, chosen to meet an average size with the least predicted
/// damage, then applied.
enum AutoquantCommand: Command {
    static let spec = CommandSpec(
        "autoquant", summary: "Choose a bit width per layer to meet an average bits per weight with the least damage, and quantize.",
        discussion: """
            Mixed precision under a size, as llama.cpp's --target-bpw and mlx-lm's dynamic quantization do. The damage of each block layer at each candidate width is predicted from two measures on the first `seqlen` tokens of the first `samples` calibration windows: the KL divergence of the model with that layer alone quantized (as `sensitivity` measures it; for an encoder, the mean 1 − cosine of its output rows) at two widths, the candidate nearest 4 and the one below it, and the layer's relative output error ‖X(W − Ŵ)ᵀ‖ / ‖XWᵀ‖ at every candidate. A measured width's damage is its KL divergence; another's is scaled from the nearest measured width m, damage(layer, b) = KL(layer, m) × (error(layer, b) / error(layer, m))², the KL divergence being quadratic in a small change of the output. Then the widths are chosen, by dynamic programming over the bytes, for the least summed damage whose bytes (codes, scales and zero points, as stored) come to at most `target` bits per weight of the matched layers.
            Prints the plan (each block's layers with their widths), then applies it: round-to-nearest per layer, or `method=gptq` on the whole calibration set with each layer's width (one sequential pass, as `quantize ... method=gptq`). The grid (`group`, `clip`, `sym`/`asym`) is the same for every width. The change is one step: an error or Ctrl-C leaves every weight as it was.
            """,
        positionals: [ArgumentSpec("pattern", .pattern, help: "the layers (default: every linear layer of the blocks)", default: .word("layer.*"))],
        options: [
            ArgumentSpec("target", .number, help: "average bits per weight of the matched layers, scales counted (required)", range: 0...64),
            ArgumentSpec("candidates", .list(.integer), help: "the widths to choose from (default: [2, 3, 4, 8])"),
            ArgumentSpec("group", .any, help: "input columns per scale: a number, channel or tensor", default: .number(128)),
            ArgumentSpec("method", .word, help: "how codes are chosen: rtn, or gptq", default: .word("rtn"), allowed: ["rtn", "gptq"]),
            ArgumentSpec("clip", .word, help: "how each group's range is chosen (default: mse for rtn, none for gptq)", allowed: ["none", "mse"]),
            ArgumentSpec("samples", .integer, help: "calibration windows the damage is measured on", default: .number(Double(Session.sensitivitySamples)), range: 1...100_000),
            ArgumentSpec("seqlen", .integer, help: "tokens of each of those windows measured on (the first)", default: .number(Double(Session.sensitivityLength)), range: 2...1_000_000),
            ArgumentSpec("damp", .number, help: "GPTQ: dampening, a share of the mean Hessian diagonal", default: .number(0.01), range: 0...10),
            ArgumentSpec("block", .integer, help: "GPTQ: columns per lazy-update block", default: .number(128), range: 1...65536),
            ArgumentSpec("exclude", .pattern, help: "layers to leave as they are"),
        ],
        flags: [
            FlagSpec("sym", help: "symmetric grid, zero at the centre (default)", group: "grid"),
            FlagSpec("asym", help: "asymmetric grid with a zero point per group", group: "grid"),
            FlagSpec("act_order", help: "GPTQ: columns by decreasing Hessian diagonal, with static groups"),
        ],
        resultFields: [
            ("plan", "a record per layer, in model order: layer, bits, damage (predicted)"),
            ("layer_bits_per_weight", "bits per weight of the matched layers as quantized, scales and zero points counted (at most target)"),
            ("target", "the target"), ("candidates", "the widths chosen from"), ("measured_bits", "the widths whose damage was measured end to end"),
            ("method", "rtn or gptq"), ("scheme", "the grid of the candidate nearest 4 bits, as int4 g64 sym"),
            ("predicted_damage", "the plan's summed predicted damage (mean KL divergence per token; an encoder's mean 1 − cosine)"),
            ("uniform_damage", "the same prediction for the widest candidate that fits the target in every layer"),
            ("uniform_bits", "that candidate"), ("layers", "layers quantized"), ("seconds", "time taken"),
            ("size_mb", "weights as held now, MB"), ("bytes", "bytes of the weights as held now"),
            ("bits_per_weight", "bits per parameter of the whole model"), ("params", "parameters"),
        ],
        examples: [
            "autoquant target=4.5", "autoquant target=4.25 candidates=[3, 4, 8] group=64",
            "autoquant layer.* target=3.5 group=64 method=gptq act_order",
        ])

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let loaded = try session.workspace.requireModel()
        let model = loaded.model
        let entries = try Session.selectForCompression(invocation, loaded: loaded)
        if let outside = entries.first(where: { CalibratedQuantizer.blockIndex($0.canonical) == nil }) {
            throw CommandError.invalidArgument("pattern", "autoquant chooses widths for the linear layers of the blocks; quantize \(outside.canonical) on its own")
        }
        guard invocation.isGiven("target") else {
            throw CommandError.failed("autoquant needs target=BITS, the average bits per weight to meet (as target=4.5)")
        }
        let gptq = try invocation.text("method") == "gptq"
        if !gptq {
            for name in ["damp", "block", "act_order"] where invocation.isGiven(name) || invocation.has(name) {
                throw CommandError.invalidArgument(name, "\(name) is an option of method=gptq, not of round-to-nearest")
            }
        }
        let candidates = try Self.candidates(invocation, gptq: gptq)
        let schemes = try candidates.map {
            try Session.scheme(invocation, entries: entries, loaded: loaded, defaultClip: gptq ? .none : .mse, bits: $0)
        }
        let shapes = try entries.map { entry in
            let weight = try loaded.weights.weight(entry.weight)
            return (rows: weight.outFeatures, columns: weight.inFeatures)
        }
        let params = shapes.reduce(0) { $0 + $1.rows * $1.columns }
        let bytes = shapes.map { shape in schemes.map { $0.byteCount(rows: shape.rows, columns: shape.columns) } }
        let target = try invocation.number("target")
        let narrowest = Double(bytes.reduce(0) { $0 + $1.min()! }) * 8 / Double(params)
        let widest = Double(bytes.reduce(0) { $0 + $1.max()! }) * 8 / Double(params)
        guard target >= narrowest else {
            throw CommandError.invalidArgument(
                "target", "\(formatNumber(target)) bits/weight is below the narrowest candidate: \(schemes.first!.description) takes \(fmt(narrowest, 3)) bits/weight in these layers, scales counted")
        }
        guard target <= widest else {
            throw CommandError.invalidArgument(
                "target", "\(formatNumber(target)) bits/weight is above the widest candidate: \(schemes.last!.description) takes \(fmt(widest, 3)) bits/weight in these layers (use quantize bits=\(candidates.last!))")
        }
        let calibration = try session.calibrationWindows(loaded, invocation: invocation, argument: "samples", purpose: "autoquant")
        let windows = try Session.firstWindows(calibration.windows, invocation: invocation, session: session)
        let budget = Int((target * Double(params) / 8).rounded(.down))
        // The widths measured end to end: the candidate nearest 4 bits (the wider of two as
        // near) and the one below it, where most of a budget's choices are made.
        var reference = 0
        for (c, width) in candidates.enumerated() where abs(width - 4) <= abs(candidates[reference] - 4) { reference = c }
        let measured = reference > 0 ? [reference - 1, reference] : [reference]
        let started = Date()

        // The KL divergence of each layer alone at each measured width, then every layer's
        // output error at every width: the damage predicted for each choice.
        let units = entries.map { (name: $0.canonical, entries: [$0]) }
        let rounded = try measured.map {
            try Session.quantizedChanges(units, scheme: schemes[$0], loaded: loaded, isCancelled: session.isCancelled)
        }
        let measureBar = ProgressBar(label: "autoquant: sensitivity", unit: "layers")
        let damages = try Sensitivity.measure(
            model, changes: Array(rounded.joined()), windows: windows, progress: { measureBar.update($0, of: $1) },
            isCancelled: session.isCancelled)
        measureBar.finish()
        // Layers at the measured widths are rounded already.
        func roundedAlready(_ layer: Int, _ c: Int) -> Weight? {
            measured.firstIndex(of: c).map { rounded[$0][layer].weights[0].weight }
        }
        let layerIndex = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.canonical, $0) })
        let errorBar = ProgressBar(label: "autoquant: output errors", unit: "blocks")
        let errors = try CalibratedQuantizer.roundingErrors(
            model, entries, schemes: schemes, windows: windows,
            rounded: { entry, scheme in schemes.firstIndex(of: scheme).flatMap { roundedAlready(layerIndex[entry.canonical]!, $0) } },
            progress: { errorBar.update($0, of: $1) }, isCancelled: session.isCancelled)
        errorBar.finish()
        let predicted: [[Double]] = entries.enumerated().map { l, entry in
            let error = errors[entry.canonical] ?? []
            return candidates.indices.map { c in
                // From the nearest measured width: the reference above it, the lowest below.
                let m = measured.last { $0 <= c } ?? measured[0]
                let kld = max(0, damages[measured.firstIndex(of: m)! * entries.count + l].meanDivergence)
                return Self.predictedDamage(
                    kld: kld, error: error.indices.contains(c) ? error[c] : 0, referenceError: error.indices.contains(m) ? error[m] : 0)
            }
        }
        let options = zip(bytes, predicted).map { sizes, damage in
            zip(sizes, damage).map { BitAllocation.Option(bytes: $0, damage: $1) }
        }
        guard let chosen = BitAllocation.choose(options, budget: budget) else {
            throw CommandError.failed("no plan fits \(formatNumber(target)) bits/weight")
        }
        let plannedBytes = zip(bytes, chosen).reduce(0) { $0 + $1.0[$1.1] }
        let predictedKLD = zip(predicted, chosen).reduce(0.0) { $0 + $1.0[$1.1] }
        let uniform = candidates.indices.last { c in bytes.reduce(0) { $0 + $1[c] } <= budget }
        let uniformKLD = uniform.map { c in predicted.reduce(0.0) { $0 + $1[c] } }
        session.output(Self.planText(
            entries: entries, candidates: candidates, chosen: chosen, params: params, bytes: plannedBytes, target: target,
            predicted: predictedKLD, uniform: uniform.map { (schemes[$0].description, uniformKLD!) },
            measure: model is any CausalLanguageModel ? "KLD" : "1 − cos"))

        let applyBar = ProgressBar(label: gptq ? "autoquant: gptq" : "autoquant: quantize", unit: "layers")
        defer { applyBar.finish() }
        let widths = Dictionary(uniqueKeysWithValues: zip(entries.map(\.canonical), chosen.map { schemes[$0] }))
        try session.changingWeights { loaded in
            if gptq {
                let options = GPTQ.Options(
                    damp: try invocation.number("damp"), blockSize: try invocation.integer("block"), actOrder: invocation.has("act_order"))
                _ = try CalibratedQuantizer.gptq(
                    loaded.model, entries, schemes: { widths[$0.canonical]! }, options: options, windows: calibration.windows,
                    warn: { layer, message in session.warn(invocation, "\(layer): \(message)") },
                    progress: { applyBar.update($0, of: $1) }, isCancelled: session.isCancelled)
            } else {
                for (index, entry) in entries.enumerated() {
                    if session.isCancelled() { throw EngineError.cancelled }
                    let weight = try roundedAlready(index, chosen[index])
                        ?? ModelQuantizer.roundedToNearest(try ModelQuantizer.startingValues(loaded.weights, entry.weight), entry, scheme: widths[entry.canonical]!)
                    try loaded.weights.set(entry.weight, weight)
                    applyBar.update(index + 1, of: entries.count)
                }
            }
        }
        applyBar.finish()
        let seconds = Date().timeIntervalSince(started)
        let heldBytes = try entries.reduce(0) { $0 + (try loaded.weights.weight($1.weight)).byteCount }
        let layerBits = Double(heldBytes) * 8 / Double(params)
        let plan: [Value] = entries.enumerated().map { l, entry in
            .record(Record([
                ("layer", .string(entry.canonical)), ("bits", .number(Double(candidates[chosen[l]]))), ("damage", .number(predicted[l][chosen[l]])),
            ]))
        }
        var record = Record([
            ("plan", .list(plan)), ("layer_bits_per_weight", .number(layerBits)), ("target", .number(target)),
            ("candidates", .list(candidates.map { .number(Double($0)) })), ("measured_bits", .list(measured.map { .number(Double(candidates[$0])) })),
            ("method", .string(gptq ? "gptq" : "rtn")), ("scheme", .string(schemes[reference].description)),
            ("predicted_damage", .number(predictedKLD)), ("layers", .number(Double(entries.count))),
            ("seconds", .number((seconds * 100).rounded() / 100)),
        ])
        if let uniform, let uniformKLD {
            record["uniform_damage"] = .number(uniformKLD)
            record["uniform_bits"] = .number(Double(candidates[uniform]))
        }
        for (name, value) in Session.sizeFields(loaded) { record[name] = value }
        return .record(record)
    }

    /// The damage predicted for a layer at a width: its KL divergence at the reference width
    /// times the square of its output error's ratio to the reference width's. A layer that the
    /// reference width leaves exact (no error to scale by) is taken to lose nothing where it
    /// stays exact, and too much to choose anywhere else.
    static func predictedDamage(kld: Double, error: Double, referenceError: Double) -> Double {
        guard referenceError > 0 else { return error > 0 ? 1e30 : kld }
        let ratio = error / referenceError
        return kld * ratio * ratio
    }

    /// The widths `candidates` gives (sorted), or an error at it.
    static func candidates(_ invocation: CommandInvocation, gptq: Bool) throws -> [Int] {
        guard case .list(let items)? = invocation["candidates"] else { return [2, 3, 4, 8] }
        var widths: [Int] = []
        let lowest = gptq ? 2 : 1
        for item in items {
            guard let width = item.number, width == width.rounded(), (Double(lowest) ... 8).contains(width) else {
                throw CommandError.invalidArgument(
                    "candidates", "\(item) is not a width of \(lowest) to 8 bits\(gptq ? " (GPTQ quantizes to 2 to 8 bits)" : "")")
            }
            guard !widths.contains(Int(width)) else { throw CommandError.invalidArgument("candidates", "\(Int(width)) is listed twice") }
            widths.append(Int(width))
        }
        guard widths.count >= 2 else {
            throw CommandError.invalidArgument("candidates", "give two widths or more to choose from (one width is 'quantize bits=N')")
        }
        if invocation.has("asym"), widths.contains(1) {
            throw CommandError.invalidArgument("candidates", "bits=1 binarises (sign × mean |w|) and has no zero point: drop 1 or asym")
        }
        return widths.sorted()
    }

    /// The plan as printed: the summary, the layers at each width, and each block's layers.
    static func planText(
        entries: [LayerNames.Entry], candidates: [Int], chosen: [Int], params: Int, bytes: Int, target: Double, predicted: Double,
        uniform: (name: String, kld: Double)?, measure: String
    ) -> String {
        var text = "autoquant: \(entries.count) layers at \(fmt(Double(bytes) * 8 / Double(params), 3)) bits/weight (target \(formatNumber(target))), predicted \(measure) \(String(format: "%.4e", predicted))"
        if let uniform { text += " (uniform \(uniform.name): \(String(format: "%.4e", uniform.kld)))" }
        text += "\n"
        for (c, width) in candidates.enumerated() {
            let count = chosen.filter { $0 == c }.count
            if count > 0 { text += "  \(width) bits: \(count) layer\(count == 1 ? "" : "s")\n" }
        }
        var lines: [(block: String, cells: [String])] = []
        for (l, entry) in entries.enumerated() {
            let parts = entry.canonical.split(separator: ".", maxSplits: 2).map(String.init)
            let block = parts.count == 3 ? parts[0] + "." + parts[1] : entry.canonical
            let cell = (parts.count == 3 ? parts[2] : entry.canonical) + " " + String(candidates[chosen[l]])
            if lines.last?.block == block { lines[lines.count - 1].cells.append(cell) } else { lines.append((block, [cell])) }
        }
        let width = lines.map(\.block.count).max() ?? 0
        for line in lines { text += "  " + line.block.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + line.cells.joined(separator: "  ") + "\n" }
        return text
    }
}

extension Session {
    /// Windows `sensitivity` and `autoquant` measure on unless told, and their tokens: 1,016
    /// tokens scored keep a SmolLM2-135M run over its 210 layers to minutes on 2 cores, and
    /// short windows from many places measure more steadily than long ones from few (one
    /// 512-token window of Hamlet gave layer.12.attn.v at int4 8 times the KL divergence 32
    /// windows gave; 8 windows of 128 tokens came within 11% of those 32).
    static let sensitivitySamples = 8
    static let sensitivityLength = 128

    /// The metric `sensitivity` scores by: the one given, or kld (cosine for an encoder); an
    /// error at `metric` for one the model has no outputs for.
    static func sensitivityMetric(_ invocation: CommandInvocation, loaded: LoadedModel) throws -> String {
        let causal = loaded.model is any CausalLanguageModel
        guard invocation.isGiven("metric") else { return causal ? "kld" : "cosine" }
        let metric = try invocation.text("metric")
        if causal, metric == "cosine" {
            throw CommandError.invalidArgument("metric", "cosine scores an encoder's outputs; \(loaded.name) predicts next tokens (use kld or ppl)")
        }
        if !causal, metric != "cosine" {
            throw CommandError.invalidArgument("metric", "\(metric) needs next-token predictions; \(loaded.name) is an encoder (use cosine)")
        }
        return metric
    }

    /// The windows `sensitivity` measures on: `samples` consecutive windows of `seqlen` tokens
    /// from the start of `text`, or the first `samples` of the calibration set.
    static func sensitivityWindows(_ invocation: CommandInvocation, loaded: LoadedModel, session: Session) throws -> [[Int]] {
        guard invocation.isGiven("text") else {
            let calibration = try session.calibrationWindows(
                loaded, invocation: invocation, argument: "text", purpose: "sensitivity on the calibration set")
            return try firstWindows(calibration.windows, invocation: invocation, session: session)
        }
        let limit = loaded.config.maxPositionEmbeddings
        let length = invocation.isGiven("seqlen") || limit <= 0 ? try invocation.integer("seqlen") : min(try invocation.integer("seqlen"), limit)
        if limit > 0, length > limit {
            throw CommandError.invalidArgument("seqlen", "\(length) is longer than \(loaded.name) allows (\(limit))")
        }
        let samples = try invocation.integer("samples")
        guard samples * length <= 16_777_216 else {
            throw CommandError.invalidArgument("samples", "\(samples) windows of \(length) tokens are more than 16,777,216 tokens")
        }
        let text = expandTilde(try invocation.text("text"))
        let ids: [Int]
        do {
            ids = try tokens(of: text, count: samples * length, bos: false, loaded: loaded, session: session, invocation: invocation)
        } catch let error as EngineError {
            throw CommandError.invalidArgument("text", "\(error)")
        }
        let windows = stride(from: 0, to: ids.count, by: length).map { Array(ids[$0 ..< min(ids.count, $0 + length)]) }.filter { $0.count >= 2 }
        guard !windows.isEmpty else { throw CommandError.invalidArgument("text", "has \(ids.count) token(s); a window needs at least 2") }
        return windows
    }

    /// The first `seqlen` tokens of the first `samples` calibration windows; all the windows,
    /// with a note, when the default asks for more than there are.
    static func firstWindows(_ windows: [[Int]], invocation: CommandInvocation, session: Session) throws -> [[Int]] {
        let samples = try invocation.integer("samples")
        if samples > windows.count {
            if invocation.isGiven("samples") {
                throw CommandError.invalidArgument("samples", "the calibration set has \(windows.count) window\(windows.count == 1 ? "" : "s"); calibrate with more")
            }
            session.note(invocation, "the calibration set has \(windows.count) window\(windows.count == 1 ? "" : "s"); all are used")
        }
        let length = try invocation.integer("seqlen")
        return windows.prefix(samples).map { Array($0.prefix(length)) }
    }

    /// The units of a sensitivity analysis, each named by a pattern that selects it: every
    /// layer; the layers of each block (`layer.3.*`); or the layers of each type across the
    /// blocks (`layer.*.attn.q`). Layers outside the blocks are units of their own.
    static func sensitivityUnits(_ entries: [LayerNames.Entry], by: String) -> [(name: String, entries: [LayerNames.Entry])] {
        var units: [(name: String, entries: [LayerNames.Entry])] = []
        var index: [String: Int] = [:]
        for entry in entries {
            let parts = entry.canonical.split(separator: ".", maxSplits: 2)
            let inBlock = parts.count == 3 && parts[0] == "layer" && Int(parts[1]) != nil
            let name: String
            switch by {
            case "block" where inBlock: name = "layer.\(parts[1]).*"
            case "type" where inBlock: name = "layer.*.\(parts[2])"
            default: name = entry.canonical
            }
            if let at = index[name] {
                units[at].entries.append(entry)
            } else {
                index[name] = units.count
                units.append((name, [entry]))
            }
        }
        return units
    }

    /// Each unit's layers rounded to nearest on `scheme` from their starting values, as a change
    /// to measure (nothing is set in the store).
    static func quantizedChanges(
        _ units: [(name: String, entries: [LayerNames.Entry])], scheme: QuantizationScheme, loaded: LoadedModel,
        isCancelled: () -> Bool
    ) throws -> [Sensitivity.Change] {
        let blocks = loaded.config.numHiddenLayers
        return try units.map { unit in
            if isCancelled() { throw EngineError.cancelled }
            let weights = try unit.entries.map { entry in
                (tensor: entry.weight, weight: try ModelQuantizer.roundedToNearest(
                    try ModelQuantizer.startingValues(loaded.weights, entry.weight), entry, scheme: scheme))
            }
            return Sensitivity.Change(name: unit.name, weights: weights, firstBlock: Sensitivity.firstBlock(of: unit.entries, blocks: blocks))
        }
    }

    /// Rows of cells as aligned text: the columns in `leftColumns` left-aligned, the rest right.
    static func alignedTable(_ table: [[String]], leftColumns: Set<Int>) -> String {
        guard let header = table.first else { return "" }
        let widths = header.indices.map { column in table.map { $0[column].count }.max() ?? 0 }
        return table.map { line in
            "  " + line.indices.map { column in
                leftColumns.contains(column) ? line[column].padding(toLength: widths[column], withPad: " ", startingAt: 0)
                    : line[column].leftPadded(widths[column])
            }.joined(separator: "  ") + "\n"
        }.joined()
    }
}
