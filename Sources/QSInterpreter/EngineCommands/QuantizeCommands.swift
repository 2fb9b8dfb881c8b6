import Foundation
import QSEngine
import QSLanguage

/// `quantize`: layers to a grid of 1 to 8 bits (RTN, GPTQ, AWQ), a cast to a float type,
/// and the simulated quantization of their inputs (with SmoothQuant's smoothing).
enum QuantizeCommand: Command {
    static let spec = CommandSpec(
        "quantize", summary: "Quantize the layers a pattern matches: integer codes of 1 to 8 bits (RTN, GPTQ, AWQ), a cast to f16/bf16/f8, and their input activations.",
        discussion: """
            Selects the linear layers the pattern matches (norms and biases are never quantized; the embeddings and the head only when the pattern names them, as in `quantize embed bits=8`). Each layer is quantized from its weights as loaded (or as pruned or smoothed): quantizing it again replaces its earlier quantization.
            The grid: symmetric (the default) has scale = max|w| / (2^(bits-1) - 1/2) and codes from -2^(bits-1) to 2^(bits-1) - 1; asymmetric has scale = (max - min) / (2^bits - 1) over a range that holds 0, and a zero point per group. bits=1 binarises: sign(w) times the group's mean |w|. Scales are fp16. `group=N` shares a scale among N input columns (a row that N does not divide ends with a shorter group), `group=channel` one per output row, `group=tensor` one in all. `clip=mse` (the default for rtn and awq) shrinks each group's range to the least squared error; `clip=none` keeps the min-max grid.
            `method=gptq` (after `calibrate`) runs GPTQ: the calibration windows go through the model block by block, each block's inputs coming from the blocks before it as already quantized; each layer's codes are chosen column by column against the Hessian of its inputs, in lazy blocks of `block` columns, with `damp` of the mean Hessian diagonal added (raised tenfold, with a warning, when the Hessian is not positive definite). `act_order` takes the columns by decreasing Hessian diagonal, with static groups (each group's grid fixed before any update, in the original order). GPTQ's grid is the min-max grid unless `clip=mse` is given.
            `method=awq` (after `calibrate`) runs AWQ block by block: where a block's layers read a norm or the rows of another linear layer (q/k/v after the attention norm, gate/up after the MLP norm, down after up, o after v without grouped-query attention), per-input-channel factors s = mean|x|^a / mean|w|^(1-a) are searched over a in [0, 1) against the output error the rounding leaves on the calibration inputs, folded in (the norm or the rows before divide by s, the layers' columns multiply by s: the unquantized model computes the same), then the layers are rounded with the clip search.
            `act_bits=N` quantizes each layer's input activations (simulated: rounded to a symmetric N-bit grid before the product) per token as it runs (`act=token`, the default), over the whole input (`act=tensor`), or with a scale fixed from the calibration set (`act=static`: the mean over the windows of each window's largest |x|; larger values clip). Given alone, it leaves the weights as they are. `smooth=a` (after `calibrate`) first folds SmoothQuant's factors s = max|x|^a / max|w|^(1-a) at the same places, moving activation outliers into the weights.
            `dtype=f16|bf16` casts instead of quantizing; `dtype=f8` rounds to float8 e4m3 with one fp32 scale per output row (max|w| / 448), as llm-compressor's FP8 scheme stores it. The change is one step: an error or Ctrl-C leaves every weight as it was.
            """,
        positionals: [ArgumentSpec("pattern", .pattern, help: "the layers (default: every linear layer)", default: .word("layer.*"))],
        options: [
            ArgumentSpec("bits", .integer, help: "bits per code (1 binarises)", default: .number(4), range: 1...8),
            ArgumentSpec("group", .any, help: "input columns per scale: a number, channel or tensor", default: .number(128)),
            ArgumentSpec("method", .word, help: "how codes are chosen: rtn, or gptq or awq (after calibrate)", default: .word("rtn"), allowed: ["rtn", "gptq", "awq"]),
            ArgumentSpec("clip", .word, help: "how each group's range is chosen (default: mse for rtn and awq, none for gptq)", allowed: ["none", "mse"]),
            ArgumentSpec("damp", .number, help: "GPTQ: dampening, a share of the mean Hessian diagonal", default: .number(0.01), range: 0...10),
            ArgumentSpec("block", .integer, help: "GPTQ: columns per lazy-update block", default: .number(128), range: 1...65536),
            ArgumentSpec("exclude", .pattern, help: "layers to leave as they are"),
            ArgumentSpec("dtype", .word, help: "cast to a float type instead of quantizing", allowed: ["f16", "bf16", "f8"]),
            ArgumentSpec("act_bits", .integer, help: "quantize the layers' input activations to this many bits (simulated)", range: 2...8),
            ArgumentSpec("act", .word, help: "activation scales: per token or tensor as it runs, or static from calibration", default: .word("token"), allowed: ["token", "tensor", "static"]),
            ArgumentSpec("smooth", .number, help: "SmoothQuant: fold factors max|x|^a / max|w|^(1-a) first (after calibrate)", range: 0...1),
        ],
        flags: [
            FlagSpec("sym", help: "symmetric grid, zero at the centre (default)", group: "grid"),
            FlagSpec("asym", help: "asymmetric grid with a zero point per group", group: "grid"),
            FlagSpec("act_order", help: "GPTQ: columns by decreasing Hessian diagonal, with static groups"),
        ],
        resultFields: [
            ("layers", "layers quantized"), ("scheme", "the scheme, as int4 g128 sym"), ("method", "rtn, gptq, awq, cast or none (activations only)"),
            ("layer_bits_per_weight", "bits per weight of the quantized layers, scales and zero points counted"),
            ("weight_mse", "mean squared weight error over the quantized layers"),
            ("output_error", "GPTQ and AWQ: the layers' mean relative output error on the calibration inputs"),
            ("sqnr_db", "the quantized layers' signal-to-quantization-noise ratio, dB"),
            ("act", "the activation quantization set, as a8 token (when act_bits is given)"),
            ("smoothed", "AWQ and SmoothQuant: places where smoothing was folded in"),
            ("seconds", "time taken"), ("size_mb", "weights as held now, MB"), ("bytes", "bytes of the weights as held now"),
            ("bits_per_weight", "bits per parameter of the whole model"), ("params", "parameters"),
        ],
        examples: [
            "quantize layer.* bits=4 asym", "quantize layer.*.mlp.* bits=4 group=64", "quantize layer.*.attn.* bits=8 group=channel",
            "quantize layer.* bits=4 group=64 method=gptq act_order", "quantize layer.* bits=4 group=128 method=awq",
            "quantize layer.* bits=8 group=channel act_bits=8 smooth=0.5", "quantize embed bits=8", "quantize layer.* dtype=f16",
        ])

    static let weightOptions = ["bits", "group", "clip", "method", "damp", "block", "act_order", "sym", "asym", "dtype"]

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let loaded = try session.workspace.requireModel()
        let entries = try Session.selectForCompression(invocation, loaded: loaded)
        let started = Date()
        let method = try invocation.text("method")
        let activationOnly = invocation.isGiven("act_bits") && !weightOptions.contains(where: invocation.isGiven)
        // Every option is checked against the others before any work starts.
        if invocation.isGiven("act") && !invocation.isGiven("act_bits") {
            throw CommandError.invalidArgument("act", "act chooses the activation scales of act_bits: add act_bits=8")
        }
        if invocation.isGiven("act_bits") || invocation.isGiven("smooth"), let outside = entries.first(where: { CalibratedQuantizer.blockIndex($0.canonical) == nil }) {
            throw CommandError.invalidArgument(
                invocation.isGiven("act_bits") ? "act_bits" : "smooth", "activations are quantized for the linear layers of the blocks, not \(outside.canonical)")
        }
        if invocation.isGiven("smooth"), method == "awq" {
            throw CommandError.invalidArgument("smooth", "AWQ searches its own smoothing; smooth is SmoothQuant's, for rtn or gptq")
        }
        if let dtype = invocation["dtype"]?.text {
            for name in ["bits", "group", "clip", "method", "damp", "block", "act_order"] where invocation.isGiven(name) {
                throw CommandError.invalidArgument(name, "a cast to \(dtype) takes no \(name)")
            }
        } else if method != "gptq" {
            for name in ["damp", "block", "act_order"] where invocation.isGiven(name) {
                throw CommandError.invalidArgument(name, "\(name) is an option of method=gptq, not of \(method == "awq" ? "AWQ" : "round-to-nearest")")
            }
        }
        var scheme: QuantizationScheme?
        if !activationOnly && invocation["dtype"] == nil {
            scheme = try Session.scheme(invocation, entries: entries, loaded: loaded, defaultClip: method == "gptq" ? .none : .mse)
            if method != "rtn" {
                guard scheme!.bits >= 2 else {
                    throw CommandError.invalidArgument("bits", "\(method.uppercased()) quantizes to 2 to 8 bits; bits=1 binarises by sign alone (use method=rtn)")
                }
                if let outside = entries.first(where: { CalibratedQuantizer.blockIndex($0.canonical) == nil }) {
                    throw CommandError.invalidArgument("pattern", "\(method.uppercased()) quantizes the linear layers of the blocks; quantize \(outside.canonical) with method=rtn")
                }
            }
        }
        let actBits = invocation.isGiven("act_bits") ? try invocation.integer("act_bits") : nil
        let actMode = try invocation.text("act")
        let needsCalibration = (!activationOnly && invocation["dtype"] == nil && method != "rtn") || invocation.isGiven("smooth") || (actBits != nil && actMode == "static")
        let calibration: CalibrationSet? = needsCalibration
            ? try session.calibrationWindows(
                loaded, invocation: invocation,
                argument: invocation.isGiven("smooth") ? "smooth" : (method != "rtn" && !activationOnly ? "method" : "act"),
                purpose: invocation.isGiven("smooth") ? "smooth" : (method != "rtn" && !activationOnly ? "method=\(method)" : "act=static"))
            : nil

        var results: [LayerQuantization] = []
        var methodName = activationOnly ? "none" : method
        var schemeName = scheme?.description ?? ""
        var smoothed: Int?
        let note: CalibratedQuantizer.Warning = { layer, message in session.note(invocation, "\(layer): \(message)") }
        try session.changingWeights { loaded in
            if invocation.isGiven("smooth"), let calibration {
                let bar = ProgressBar(label: "smooth", unit: "blocks")
                defer { bar.finish() }
                smoothed = try CalibratedQuantizer.smoothQuant(
                    loaded.model, entries, alpha: try invocation.number("smooth"), windows: calibration.windows, note: note,
                    progress: { bar.update($0, of: $1) }, isCancelled: session.isCancelled)
            }
            if let dtype = invocation["dtype"]?.text {
                let type = DType(rawValue: dtype) ?? .f32
                results = dtype == "f8"
                    ? try ModelQuantizer.castToFloat8(loaded.weights, entries, isCancelled: session.isCancelled)
                    : try ModelQuantizer.cast(loaded.weights, entries, to: type, isCancelled: session.isCancelled)
                methodName = "cast"
                schemeName = dtype == "f8" ? "f8 e4m3 channel" : dtype
            } else if let scheme {
                switch method {
                case "gptq":
                    let options = GPTQ.Options(
                        damp: try invocation.number("damp"), blockSize: try invocation.integer("block"), actOrder: invocation.has("act_order"))
                    let bar = ProgressBar(label: "gptq", unit: "layers")
                    defer { bar.finish() }
                    results = try CalibratedQuantizer.gptq(
                        loaded.model, entries, scheme: scheme, options: options, windows: calibration!.windows,
                        warn: { layer, message in session.warn(invocation, "\(layer): \(message)") },
                        progress: { bar.update($0, of: $1) }, isCancelled: session.isCancelled)
                case "awq":
                    let bar = ProgressBar(label: "awq", unit: "layers")
                    defer { bar.finish() }
                    let outcome = try CalibratedQuantizer.awq(
                        loaded.model, entries, scheme: scheme, windows: calibration!.windows, note: note,
                        progress: { bar.update($0, of: $1) }, isCancelled: session.isCancelled)
                    results = outcome.results
                    smoothed = outcome.smoothed
                default:
                    let bar = ProgressBar(label: "quantize", unit: "layers")
                    defer { bar.finish() }
                    results = try ModelQuantizer.roundToNearest(
                        loaded.weights, entries, scheme: scheme, progress: { bar.update($0, of: $1) }, isCancelled: session.isCancelled)
                }
            }
            if let actBits {
                var maxima: [String: Float] = [:]
                if actMode == "static", let calibration {
                    let bar = ProgressBar(label: "act scales", unit: "blocks")
                    defer { bar.finish() }
                    maxima = try CalibratedQuantizer.inputMaxima(
                        loaded.model, entries, windows: calibration.windows, progress: { bar.update($0, of: $1) }, isCancelled: session.isCancelled)
                }
                for entry in entries {
                    let mode: ActivationQuantization.Mode = switch actMode {
                    case "tensor": .tensor
                    case "static": .static(scale: ActivationQuantization.staticScale(maximum: maxima[entry.canonical] ?? 0, bits: actBits))
                    default: .token
                    }
                    try loaded.weights.setActivationQuantization(entry.weight, ActivationQuantization(bits: actBits, mode: mode))
                }
            }
        }
        let seconds = Date().timeIntervalSince(started)
        let act = actBits.map { ActivationQuantization(bits: $0, mode: actMode == "tensor" ? .tensor : actMode == "static" ? .static(scale: 1) : .token).description }
        let bytes = try entries.reduce(0) { $0 + (try loaded.weights.weight($1.weight)).byteCount }
        let count = results.reduce(0) { $0 + $1.count }
        let noise = results.reduce(0.0) { $0 + $1.noise }
        let signal = results.reduce(0.0) { $0 + $1.signal }
        let params = try entries.reduce(0) { $0 + (try loaded.weights.weight($1.weight)).count }
        let layerBits = params > 0 ? Double(bytes) * 8 / Double(params) : 0
        let sqnr = noise > 0 ? 10 * log10(signal / noise) : Double.infinity
        var what = activationOnly ? "set the input activations of \(entries.count) layer\(entries.count == 1 ? "" : "s") to \(act ?? "")"
            : "quantized \(results.count) layer\(results.count == 1 ? "" : "s") to \(schemeName) (\(methodName))"
        if !activationOnly, let act { what += " with activations \(act)" }
        if let smoothed { what += ", smoothing folded at \(smoothed) place\(smoothed == 1 ? "" : "s")" }
        let stats = activationOnly ? "" : ": \(fmt(layerBits, 3)) bits/weight in them, SQNR \(fmt(sqnr, 1)) dB"
        session.output(
            "\(what) in \(fmt(seconds, 1)) s\(stats); model \(InspectFormatting.humanBytes(loaded.heldBytes)), \(fmt(Double(loaded.heldBytes) * 8 / Double(loaded.parameterCount), 3)) bits/weight\n")
        var record = Record([
            ("layers", .number(Double(activationOnly ? entries.count : results.count))), ("scheme", .string(schemeName)), ("method", .string(methodName)),
            ("layer_bits_per_weight", .number((layerBits * 1000).rounded() / 1000)),
            ("weight_mse", .number(count > 0 ? noise / Double(count) : 0)), ("sqnr_db", .number(sqnr)),
            ("seconds", .number((seconds * 100).rounded() / 100)),
        ])
        let outputErrors = results.compactMap(\.outputError)
        if !outputErrors.isEmpty { record["output_error"] = .number(outputErrors.reduce(0, +) / Double(outputErrors.count)) }
        if let act { record["act"] = .string(act) }
        if let smoothed { record["smoothed"] = .number(Double(smoothed)) }
        for (name, value) in Session.sizeFields(loaded) { record[name] = value }
        return .record(record)
    }
}

extension Session {
    /// The layers a compression command works on: the linear layers `pattern` matches, and
    /// the embeddings and head only where the pattern names them, less `exclude`. Errors point
    /// at the option that matched nothing, with the nearest names.
    static func selectForCompression(_ invocation: CommandInvocation, loaded: LoadedModel, pattern given: String? = nil) throws -> [LayerNames.Entry] {
        let pattern = try given ?? invocation.text("pattern")
        let glob: Glob
        if let given {
            do { glob = try Glob(given) } catch { throw CommandError.invalidArgument("pattern", error.reason) }
        } else {
            glob = try invocation.glob("pattern")
        }
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
