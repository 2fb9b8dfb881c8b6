import Foundation
import QSEngine
import QSLanguage

/// `quantize`: layers to a grid of 1 to 8 bits (RTN), or a cast to f16/bf16.
enum QuantizeCommand: Command {
    static let spec = CommandSpec(
        "quantize", summary: "Quantize the layers a pattern matches: integer codes of 1 to 8 bits, or a cast to f16/bf16.",
        discussion: """
            Selects the linear layers the pattern matches (norms and biases are never quantized; the embeddings and the head only when the pattern names them, as in `quantize embed bits=8`). Each layer is quantized from its weights as loaded (or as pruned): quantizing it again replaces its earlier quantization.
            The grid: symmetric (the default) has scale = max|w| / (2^(bits-1) - 1/2) and codes from -2^(bits-1) to 2^(bits-1) - 1; asymmetric has scale = (max - min) / (2^bits - 1) over a range that holds 0, and a zero point per group. bits=1 binarises: sign(w) times the group's mean |w|. Scales are fp16. `group=N` shares a scale among N input columns (a row that N does not divide ends with a shorter group), `group=channel` one per output row, `group=tensor` one in all. `clip=mse` (the default) shrinks each group's range to the least squared error; `clip=none` keeps the min-max grid.
            `method=gptq` (after `calibrate`) runs GPTQ: the calibration windows go through the model block by block, each block's inputs coming from the blocks before it as already quantized; each layer's codes are chosen column by column against the Hessian of its inputs, in lazy blocks of `block` columns, with `damp` of the mean Hessian diagonal added (raised tenfold, with a warning, when the Hessian is not positive definite). `act_order` takes the columns by decreasing Hessian diagonal, with static groups (each group's grid fixed before any update, in the original order). GPTQ's grid is the min-max grid unless `clip=mse` is given.
            `dtype=f16|bf16` casts instead of quantizing. The change is one step: an error or Ctrl-C leaves every weight as it was.
            """,
        positionals: [ArgumentSpec("pattern", .pattern, help: "the layers (default: every linear layer)", default: .word("layer.*"))],
        options: [
            ArgumentSpec("bits", .integer, help: "bits per code (1 binarises)", default: .number(4), range: 1...8),
            ArgumentSpec("group", .any, help: "input columns per scale: a number, channel or tensor", default: .number(128)),
            ArgumentSpec("method", .word, help: "how codes are chosen: rtn, or gptq (after calibrate)", default: .word("rtn"), allowed: ["rtn", "gptq"]),
            ArgumentSpec("clip", .word, help: "how each group's range is chosen (default: mse for rtn, none for gptq)", allowed: ["none", "mse"]),
            ArgumentSpec("damp", .number, help: "GPTQ: dampening, a share of the mean Hessian diagonal", default: .number(0.01), range: 0...10),
            ArgumentSpec("block", .integer, help: "GPTQ: columns per lazy-update block", default: .number(128), range: 1...65536),
            ArgumentSpec("exclude", .pattern, help: "layers to leave as they are"),
            ArgumentSpec("dtype", .word, help: "cast to a float type instead of quantizing", allowed: ["f16", "bf16"]),
        ],
        flags: [
            FlagSpec("sym", help: "symmetric grid, zero at the centre (default)", group: "grid"),
            FlagSpec("asym", help: "asymmetric grid with a zero point per group", group: "grid"),
            FlagSpec("act_order", help: "GPTQ: columns by decreasing Hessian diagonal, with static groups"),
        ],
        resultFields: [
            ("layers", "layers quantized"), ("scheme", "the scheme, as int4 g128 sym"), ("method", "rtn or cast"),
            ("layer_bits_per_weight", "bits per weight of the quantized layers, scales and zero points counted"),
            ("weight_mse", "mean squared weight error over the quantized layers"),
            ("output_error", "GPTQ: the layers' mean relative output error on the calibration inputs"),
            ("sqnr_db", "the quantized layers' signal-to-quantization-noise ratio, dB"),
            ("seconds", "time taken"), ("size_mb", "weights as held now, MB"), ("bytes", "bytes of the weights as held now"),
            ("bits_per_weight", "bits per parameter of the whole model"), ("params", "parameters"),
        ],
        examples: ["quantize layer.* bits=4 asym", "quantize layer.*.mlp.* bits=4 group=64", "quantize layer.*.attn.* bits=8 group=channel", "quantize layer.* bits=4 group=64 method=gptq act_order", "quantize embed bits=8", "quantize layer.* dtype=f16"])

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let loaded = try session.workspace.requireModel()
        let entries = try Session.selectForCompression(invocation, loaded: loaded)
        let started = Date()
        let results: [LayerQuantization]
        let method: String
        let schemeName: String
        if let dtype = invocation["dtype"]?.text {
            for name in ["bits", "group", "clip", "method", "damp", "block", "act_order"] where invocation.isGiven(name) {
                throw CommandError.invalidArgument(name, "a cast to \(dtype) takes no \(name)")
            }
            let type = DType(rawValue: dtype)!
            results = try session.changingWeights { loaded in
                try ModelQuantizer.cast(loaded.weights, entries, to: type, isCancelled: session.isCancelled)
            }
            method = "cast"
            schemeName = dtype
        } else if try invocation.text("method") == "gptq" {
            let scheme = try Session.scheme(invocation, entries: entries, loaded: loaded, defaultClip: .none)
            guard scheme.bits >= 2 else {
                throw CommandError.invalidArgument("bits", "GPTQ quantizes to 2 to 8 bits; bits=1 binarises by sign alone (use method=rtn)")
            }
            if let outside = entries.first(where: { CalibratedQuantizer.blockIndex($0.canonical) == nil }) {
                throw CommandError.invalidArgument("pattern", "GPTQ quantizes the linear layers of the blocks; quantize \(outside.canonical) with method=rtn")
            }
            let options = GPTQ.Options(
                damp: try invocation.number("damp"), blockSize: try invocation.integer("block"), actOrder: invocation.has("act_order"))
            let calibration = try session.calibrationWindows(loaded, invocation: invocation, argument: "method", purpose: "method=gptq")
            let bar = ProgressBar(label: "gptq", unit: "layers")
            defer { bar.finish() }
            results = try session.changingWeights { loaded in
                try CalibratedQuantizer.gptq(
                    loaded.model, entries, scheme: scheme, options: options, windows: calibration.windows,
                    warn: { layer, message in session.warn(invocation, "\(layer): \(message)") },
                    progress: { bar.update($0, of: $1) }, isCancelled: session.isCancelled)
            }
            method = "gptq"
            schemeName = scheme.description
        } else {
            for name in ["damp", "block", "act_order"] where invocation.isGiven(name) {
                throw CommandError.invalidArgument(name, "\(name) is an option of method=gptq, not of round-to-nearest")
            }
            let scheme = try Session.scheme(invocation, entries: entries, loaded: loaded, defaultClip: .mse)
            let bar = ProgressBar(label: "quantize", unit: "layers")
            defer { bar.finish() }
            results = try session.changingWeights { loaded in
                try ModelQuantizer.roundToNearest(
                    loaded.weights, entries, scheme: scheme, progress: { bar.update($0, of: $1) }, isCancelled: session.isCancelled)
            }
            method = "rtn"
            schemeName = scheme.description
        }
        let seconds = Date().timeIntervalSince(started)
        let bytes = try entries.reduce(0) { $0 + (try loaded.weights.weight($1.weight)).byteCount }
        let count = results.reduce(0) { $0 + $1.count }
        let noise = results.reduce(0.0) { $0 + $1.noise }
        let signal = results.reduce(0.0) { $0 + $1.signal }
        let layerBits = count > 0 ? Double(bytes) * 8 / Double(count) : 0
        let sqnr = noise > 0 ? 10 * log10(signal / noise) : Double.infinity
        session.output(
            "quantized \(results.count) layer\(results.count == 1 ? "" : "s") to \(schemeName) (\(method)) in \(fmt(seconds, 1)) s: \(fmt(layerBits, 3)) bits/weight in them, SQNR \(fmt(sqnr, 1)) dB; model \(InspectFormatting.humanBytes(loaded.heldBytes)), \(fmt(Double(loaded.heldBytes) * 8 / Double(loaded.parameterCount), 3)) bits/weight\n")
        var record = Record([
            ("layers", .number(Double(results.count))), ("scheme", .string(schemeName)), ("method", .string(method)),
            ("layer_bits_per_weight", .number((layerBits * 1000).rounded() / 1000)),
            ("weight_mse", .number(count > 0 ? noise / Double(count) : 0)), ("sqnr_db", .number(sqnr)),
            ("seconds", .number((seconds * 100).rounded() / 100)),
        ])
        let outputErrors = results.compactMap(\.outputError)
        if !outputErrors.isEmpty { record["output_error"] = .number(outputErrors.reduce(0, +) / Double(outputErrors.count)) }
        for (name, value) in Session.sizeFields(loaded) { record[name] = value }
        return .record(record)
    }
}

extension Session {
    /// The layers a compression command works on: the linear layers `pattern` matches, and
    /// the embeddings and head only where the pattern names them, less `exclude`. Errors point
    /// at the option that matched nothing, with the nearest names.
    static func selectForCompression(_ invocation: CommandInvocation, loaded: LoadedModel) throws -> [LayerNames.Entry] {
        let pattern = try invocation.text("pattern")
        let glob = try invocation.glob("pattern")
        let names = loaded.model.names
        if pattern == "head", names.entry("head") == nil, names.headWeight != nil {
            throw CommandError.invalidArgument("pattern", "\(loaded.name) ties its head to the token embedding: quantize embed")
        }
        let matched = try matchLayers(glob, in: loaded).filter { entry in
            switch entry.kind {
            case .linear: true
            case .embedding, .head: pattern.contains(entry.canonical)
            case .norm: false
            }
        }
        guard !matched.isEmpty else {
            throw CommandError.invalidArgument(
                "pattern", "matches no linear layer of \(loaded.name) (norms are never quantized; embeddings and the head only when named)")
        }
        guard invocation.isGiven("exclude") else { return matched }
        let excluded = Set(try matchLayers(try invocation.glob("exclude"), in: loaded, argument: "exclude").map(\.canonical))
        let kept = matched.filter { !excluded.contains($0.canonical) }
        guard !kept.isEmpty else { throw CommandError.invalidArgument("exclude", "leaves no layer of the pattern to quantize") }
        return kept
    }

    /// The grid a `quantize` asks for, checked against every layer it will quantize; `bits`
    /// replaces the option of that name (autoquant's candidates).
    static func scheme(
        _ invocation: CommandInvocation, entries: [LayerNames.Entry], loaded: LoadedModel, defaultClip: QuantizationScheme.Clip,
        bits: Int? = nil
    ) throws -> QuantizationScheme {
        let bits = try bits ?? invocation.integer("bits")
        let symmetric = !invocation.has("asym")
        if bits == 1 && invocation.has("asym") {
            throw CommandError.invalidArgument("bits", "bits=1 binarises (sign × mean |w|) and has no zero point: drop asym")
        }
        let granularity: PackedWeight.Granularity
        switch invocation["group"] {
        case .pattern("channel")?: granularity = .channel
        case .pattern("tensor")?: granularity = .tensor
        case .number(let size)? where size == size.rounded() && size >= 1 && size < 1e9:
            let narrowest = try entries.map { try loaded.weights.weight($0.weight).inFeatures }.min() ?? 0
            // The default of 128 takes a narrower row whole; a group asked for must fit.
            guard Int(size) <= narrowest || !invocation.isGiven("group") else {
                throw CommandError.invalidArgument("group", "\(Int(size)) is wider than the rows of \(narrowest) inputs it would split")
            }
            granularity = .group(Int(size))
        default:
            throw CommandError.invalidArgument("group", "expected a positive whole number of columns, channel or tensor")
        }
        return QuantizationScheme(
            bits: bits, symmetric: symmetric, granularity: granularity,
            clip: invocation.isGiven("clip") ? QuantizationScheme.Clip(rawValue: try invocation.text("clip")) ?? defaultClip : defaultClip)
    }
}
