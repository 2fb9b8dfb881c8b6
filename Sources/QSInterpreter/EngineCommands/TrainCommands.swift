import Foundation
import QSEngine
import QSLanguage

/// What `finetune` and `tune` share: the parameter selection and the optimizer's options.
enum TrainingArguments {
    static let params = ArgumentSpec(
        "params", .pattern,
        help: "what learns: all, norms, scales (the quantized layers' scales and the norms), or a layer pattern", default: .word("all"))

    /// The selection `params=` asks for, checked against the model: a pattern must match a layer.
    static func selection(_ invocation: CommandInvocation, loaded: LoadedModel) throws -> ParameterSelection {
        let given = try invocation.text("params")
        switch given {
        case "all": return .all
        case "norms": return .norms
        case "scales": return .scales
        default:
            let chosen = Set(try Session.matchLayers(try invocation.glob("params"), in: loaded, argument: "params").map(\.canonical))
            return ParameterSelection { entry, _, _ in (chosen.contains(entry.canonical), false) }
        }
    }

    static func options(_ invocation: CommandInvocation) throws -> TrainingOptions {
        var options = TrainingOptions()
        options.steps = try invocation.integer("steps")
        options.learningRate = try invocation.number("lr")
        options.warmup = min(try invocation.integer("warmup"), options.steps)
        if let optimizer = OptimizerKind(rawValue: try invocation.text("optimizer")) { options.optimizer = optimizer }
        options.weightDecay = try invocation.number("weight_decay")
        options.l1 = try invocation.number("l1")
        options.l2 = try invocation.number("l2")
        return options
    }

    static let optimizerOptions = [
        ArgumentSpec("optimizer", .word, help: "adamw or sgd", default: .word("adamw"), allowed: ["adamw", "sgd"]),
        ArgumentSpec("weight_decay", .number, help: "decoupled weight decay (AdamW) or added to the gradient (SGD)", default: .number(0), range: 0...1),
        ArgumentSpec("l1", .number, help: "λ of the L1 term λΣ|w| over the learning linear weights", default: .number(0), range: 0...1),
        ArgumentSpec("l2", .number, help: "λ of the L2 term λΣw² over the learning linear weights", default: .number(0), range: 0...1),
        ArgumentSpec("warmup", .integer, help: "steps of linear warm-up before the cosine decay", default: .number(10), range: 0...1_000_000),
        ArgumentSpec("seed", .integer, help: "which windows each step takes (default: the 'seed' setting)", range: 0...4_294_967_295),
    ]

    /// The activation memory the `train_memory` setting asks for.
    static func memory(_ session: Session) -> ActivationMemory {
        session.setting("train_memory")?.text.flatMap(ActivationMemory.init(rawValue:)) ?? .keep
    }

    /// The model built for training, with errors at `params` when it fails or nothing learns.
    static func model(_ invocation: CommandInvocation, _ loaded: LoadedModel, selection: ParameterSelection, blocks: Set<Int>? = nil) throws -> TrainingModel {
        let model: TrainingModel
        do {
            model = try TrainingModel(loaded.model, selection: selection, blocks: blocks)
        } catch let error as EngineError {
            throw CommandError.failed(error.message)
        }
        if try invocation.text("params") == "scales", !model.trainable.contains(where: \.learnsScales) {
            throw CommandError.invalidArgument("params", "scales learn only on layers quantized by qs, and \(loaded.name) has none: quantize first")
        }
        if model.trainable.isEmpty {
            throw CommandError.invalidArgument("params", "selects nothing that can learn in \(loaded.name) (scales learn only on layers quantized by qs)")
        }
        return model
    }
}

/// `finetune`: end-to-end training on a text, with cross entropy or distillation.
enum FinetuneCommand: Command {
    static let spec = CommandSpec(
        "finetune", summary: "Train the model on a text: cross entropy or distillation, quantization-aware through quantized layers.",
        discussion: """
            Each step takes `batch` random windows of `seqlen` tokens of the text, runs the model forward and backward, and updates what `params` selects with AdamW (or SGD) at `lr`, warmed up over `warmup` steps then decayed along a cosine to a tenth; the gradient's global norm is clipped to 1, as transformers' Trainer does. Layers quantized by `quantize` train through fake quantization on their grid (fp32 master weights, the straight-through estimator) and are packed again on that grid at the end, so `save` and `export` work as after any quantization; `params=scales` learns only their scales (learned step size) and the norms. Pruned weights stay zero (their masks hold). `l1=` and `l2=` add λΣ|w| and λΣw² over the learning linear weights to the loss.
            `loss=kd` distils: the loss is T²·KL(teacher ‖ model) at `temperature` T, the teacher being the model as loaded (computed from its stored tensors, with no second fp32 copy held). An encoder (BERT) has no next-token loss: it always distils, its loss the mean squared error of its last hidden states against the model as loaded's (no temperature). Trains the llama family, gpt2 and bert. The `train_memory` setting keeps every block's activations for the backward (keep) or recomputes them from each block's input (recompute, less memory). Ctrl-C stops at the end of the current step and keeps the weights of the last whole step; a loss that is not finite stops the run with the weights of the last step whose loss was finite.
            """,
        positionals: [ArgumentSpec("text", .path, help: "a text file or registry text (default: the 'eval_text' setting)")],
        options: [
            ArgumentSpec("steps", .integer, help: "optimizer steps", default: .number(200), range: 1...1_000_000),
            ArgumentSpec("lr", .number, help: "peak learning rate", default: .number(1e-4), range: 1e-12...1),
            ArgumentSpec("batch", .integer, help: "windows per step", default: .number(4), range: 1...4096),
            ArgumentSpec("seqlen", .integer, help: "tokens per window (capped at the model's limit unless given)", default: .number(256), range: 2...1_000_000),
            ArgumentSpec("loss", .word, help: "ce (next-token cross entropy) or kd (distillation from the model as loaded)", default: .word("ce"), allowed: ["ce", "kd"]),
            ArgumentSpec("temperature", .number, help: "kd: the softmax temperature", default: .number(1), range: 0.01...100),
            TrainingArguments.params,
        ] + TrainingArguments.optimizerOptions,
        resultFields: [
            ("text", "the text"), ("steps", "steps taken"), ("loss", "ce or kd"), ("first_loss", "the loss of the first step"),
            ("last_loss", "the loss of the last step"), ("losses", "the loss of every step"), ("lr", "peak learning rate"),
            ("batch", "windows per step"), ("seqlen", "tokens per window"), ("optimizer", "adamw or sgd"), ("params", "what learned"),
            ("trainable", "values that learned"), ("tokens", "tokens trained on"), ("tokens_per_second", "training throughput"),
            ("step_seconds", "seconds each step took"),
            ("near_zero_before", "share of the learning block weights with |w| < 0.001 before"), ("near_zero", "the same share after (what l1= raises)"),
            ("seconds", "time taken"), ("seed", "the seed"), ("stopped", "why the run ended early, when it did"),
            ("size_mb", "weights as held now, MB"), ("bytes", "bytes of the weights as held now"),
            ("bits_per_weight", "bits per parameter of the whole model"),
        ],
        examples: [
            "finetune shakespeare steps=100 lr=1e-4", "finetune shakespeare loss=kd steps=200 params=scales lr=1e-3",
            "finetune \"notes.txt\" params=norms steps=50", "finetune shakespeare l1=1e-6 steps=100",
        ])

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let loaded = try session.workspace.requireModel()
        let text = invocation.isGiven("text") ? try invocation.text("text") : (session.setting("eval_text")?.text ?? "shakespeare")
        let steps = try invocation.integer("steps")
        let batch = try invocation.integer("batch")
        let limit = loaded.config.maxPositionEmbeddings
        // Unless given, a window is 256 tokens or the model's limit, whichever is shorter.
        let length = invocation.isGiven("seqlen") || limit <= 0 ? try invocation.integer("seqlen") : min(try invocation.integer("seqlen"), limit)
        let options = try TrainingArguments.options(invocation)
        // An encoder has no next-token loss: it learns to give the hidden states of the model as
        // loaded (kd, the default for it).
        let encoder = !(loaded.model is any CausalLanguageModel)
        if encoder, invocation.isGiven("loss"), try invocation.text("loss") == "ce" {
            throw CommandError.invalidArgument("loss", "\(loaded.name) is an encoder: it has no next-token loss; finetune it with loss=kd (its last hidden states learn those of the model as loaded)")
        }
        if encoder, invocation.isGiven("temperature") {
            throw CommandError.invalidArgument("temperature", "an encoder distils its hidden states by mean squared error, which has no temperature")
        }
        let lossName = encoder ? "kd" : try invocation.text("loss")
        let loss: TrainingLoss = lossName == "kd" ? .distillation(temperature: try invocation.number("temperature")) : .crossEntropy
        if lossName != "kd", invocation.isGiven("temperature") {
            throw CommandError.invalidArgument("temperature", "temperature is an option of loss=kd")
        }
        if lossName == "kd", !loaded.isModified {
            throw CommandError.invalidArgument("loss", "loss=kd distils from the model as loaded, and the weights are as loaded: there is nothing to distil (quantize or prune first, or use loss=ce)")
        }
        if limit > 0, length > limit { throw CommandError.invalidArgument("seqlen", "\(length) is longer than \(loaded.name) allows (\(limit))") }
        guard steps * batch * length <= 16_777_216 else {
            throw CommandError.invalidArgument("steps", "\(steps) steps of \(batch) × \(length) tokens are more than 16,777,216 tokens")
        }
        let seed = UInt64(invocation.isGiven("seed") ? try invocation.integer("seed") : Int(session.setting("seed")?.number ?? 0))
        let model = try TrainingArguments.model(invocation, loaded, selection: try TrainingArguments.selection(invocation, loaded: loaded))
        model.memory = TrainingArguments.memory(session)
        let windows = try Session.draw(
            CalibrationRequest(text: text, samples: steps * batch, length: length, seed: seed), loaded: loaded, session: session,
            invocation: invocation
        ).windows
        var teacher: (([[Int]]) throws -> [Float])?
        if case .distillation = loss {
            let conversions = ConversionCache(budgetBytes: ConversionCache.evaluationBudget)
            if let reference = try loaded.reference as? CausalLanguageModel {
                teacher = { batch in try batch.flatMap { try reference.forward($0, conversions: conversions).data } }
            } else if let reference = try loaded.reference as? BERTModel {
                teacher = { batch in try batch.flatMap { try reference.encode($0).data } }
            } else {
                throw CommandError.failed("loss=kd needs a language model or a BERT encoder")
            }
        }
        var outcome = TrainingOutcome()
        let nearZeroBefore = Finetuner.nearZeroShare(model)
        try session.changingWeights { loaded in
            let bar = ProgressBar(label: "finetune", unit: "steps")
            defer { bar.finish() }
            outcome = try Finetuner.run(
                model, loss: loss, options: options,
                batches: { step in Array(windows[step * batch ..< (step + 1) * batch]) }, teacher: teacher,
                progress: { record, total, rate in bar.update(record.step, of: total, detail: "loss \(fmt(record.loss, 4))  \(fmt(rate, 0)) tok/s") },
                isCancelled: session.isCancelled)
            try Finetuner.commit(model, to: loaded.weights)
        }
        if let stopped = outcome.stopped { session.warn(invocation, stopped) }
        let losses: [Double] = outcome.steps.map { $0.loss }
        let rate = outcome.seconds > 0 ? Double(outcome.tokens) / outcome.seconds : 0
        let trainable = model.trainable.reduce(0) { $0 + ($1.learnsValues ? $1.count : 0) + $1.scaleGrad.count }
        session.output(
            "finetune: \(outcome.steps.count) step\(outcome.steps.count == 1 ? "" : "s") of \(batch) × \(length) tokens (\(lossName), \(options.optimizer.rawValue), lr \(formatNumber(options.learningRate))), "
                + "loss \(losses.first.map { fmt($0, 4) } ?? "-") → \(losses.last.map { fmt($0, 4) } ?? "-"), "
                + "\(InspectFormatting.humanCount(trainable)) values learned, \(fmt(rate, 1)) tok/s, \(fmt(outcome.seconds, 1)) s\n")
        let paramsText = try invocation.text("params")
        var fields: [(name: String, value: Value)] = [
            ("text", .string(text)), ("steps", .number(Double(outcome.steps.count))), ("loss", .string(lossName)),
            ("first_loss", losses.first.map { Value.number($0) } ?? Value.none), ("last_loss", losses.last.map { Value.number($0) } ?? Value.none),
            ("losses", .list(losses.map { .number($0) })), ("lr", .number(options.learningRate)), ("batch", .number(Double(batch))),
            ("seqlen", .number(Double(length))), ("optimizer", .string(options.optimizer.rawValue)),
            ("params", .string(paramsText)), ("trainable", .number(Double(trainable))),
        ]
        fields += [
            ("tokens", .number(Double(outcome.tokens))), ("tokens_per_second", .number((rate * 10).rounded() / 10)),
            ("step_seconds", .list(outcome.steps.map { .number(($0.seconds * 1000).rounded() / 1000) })),
            ("near_zero_before", .number(nearZeroBefore)), ("near_zero", .number(Finetuner.nearZeroShare(model))),
            ("seconds", .number((outcome.seconds * 100).rounded() / 100)), ("seed", .number(Double(seed))),
        ]
        var record = Record(fields)
        if let stopped = outcome.stopped { record["stopped"] = Value.string(stopped) }
        for (name, value) in Session.sizeFields(loaded) { record[name] = value }
        return .record(record)
    }
}

/// `tune blocks`: block-wise reconstruction against the model as loaded.
enum TuneCommand: Command {
    static let spec = CommandSpec(
        "tune", summary: "Block-wise reconstruction: each block learns to give the original block's outputs on the calibration set.",
        discussion: """
            `tune blocks` (after `calibrate`) goes through the blocks in order. Each block of the compressed model takes the compressed model's own states (the blocks before it already tuned) and learns, for `steps` steps on random batches of `batch` calibration windows, to give the states the model as loaded gives at that block, by mean squared error, with AdamW at `lr` (warmed up, cosine decay). Quantized layers learn within their grid (fake quantization with fp32 master weights, packed again at the end) or, with `params=scales`, only their scales and the norms; pruned weights stay zero. A block whose error (on the first 16 windows) tuning did not lower keeps its weights. Far cheaper than `finetune`: one block's activations at a time. What EfficientQAT's Block-AP and OmniQuant do to make 2- and 3-bit weights usable.
            """,
        positionals: [ArgumentSpec("what", .word, help: "blocks", required: true, allowed: ["blocks"])],
        options: [
            ArgumentSpec("steps", .integer, help: "optimizer steps per block", default: .number(100), range: 1...1_000_000),
            ArgumentSpec("lr", .number, help: "peak learning rate", default: .number(1e-4), range: 1e-12...1),
            ArgumentSpec("batch", .integer, help: "calibration windows per step", default: .number(4), range: 1...4096),
            TrainingArguments.params,
        ] + TrainingArguments.optimizerOptions,
        resultFields: [
            ("blocks", "a record per block: block, before and after (mean squared error of its outputs), parameters"),
            ("steps", "steps per block"), ("lr", "peak learning rate"), ("batch", "windows per step"), ("params", "what learned"),
            ("seconds", "time taken"), ("size_mb", "weights as held now, MB"), ("bytes", "bytes of the weights as held now"),
            ("bits_per_weight", "bits per parameter of the whole model"),
        ],
        examples: ["tune blocks", "tune blocks steps=200 lr=5e-5", "tune blocks params=scales lr=1e-3"])

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let loaded = try session.workspace.requireModel()
        let started = Date()
        let options = try TrainingArguments.options(invocation)
        let batch = try invocation.integer("batch")
        let calibration = try session.calibrationWindows(loaded, invocation: invocation, argument: "what", purpose: "tune blocks")
        if !loaded.isModified {
            throw CommandError.invalidArgument("what", "the weights are as loaded: each block already gives the original's outputs (quantize or prune first)")
        }
        let selection = try TrainingArguments.selection(invocation, loaded: loaded)
        // Checked before any work: something in some block must learn.
        _ = try TrainingArguments.model(invocation, loaded, selection: selection, blocks: Set(0 ..< loaded.config.numHiddenLayers))
        let seed = UInt64(invocation.isGiven("seed") ? try invocation.integer("seed") : Int(session.setting("seed")?.number ?? 0))
        let reference = try loaded.reference
        var results: [BlockTuner.BlockResult] = []
        try session.changingWeights { loaded in
            let bar = ProgressBar(label: "tune", unit: "steps")
            defer { bar.finish() }
            let blocks = loaded.config.numHiddenLayers
            results = try BlockTuner.run(
                student: loaded.model, teacher: reference, windows: calibration.windows, selection: selection, options: options,
                batch: batch, seed: seed, memory: TrainingArguments.memory(session),
                progress: { block, step, steps, loss in
                    bar.update(block * steps + step, of: blocks * steps, detail: "block \(block)  mse \(fmt(loss, 5))")
                }, isCancelled: session.isCancelled)
        }
        let seconds = Date().timeIntervalSince(started)
        let improved = results.filter { $0.after < $0.before }.count
        let before = results.last?.before ?? 0
        let after = results.last?.after ?? 0
        session.output(
            "tune blocks: \(results.count) blocks, \(options.steps) steps each, \(improved) improved; last block's error \(fmt(before, 5)) → \(fmt(after, 5)) in \(fmt(seconds, 1)) s\n")
        var record = Record([
            ("blocks", .list(results.map {
                .record(Record([
                    ("block", .number(Double($0.block))), ("before", .number($0.before)), ("after", .number($0.after)),
                    ("parameters", .number(Double($0.parameters))),
                ]))
            })),
            ("steps", .number(Double(options.steps))), ("lr", .number(options.learningRate)), ("batch", .number(Double(batch))),
            ("params", .string(try invocation.text("params"))), ("seconds", .number((seconds * 100).rounded() / 100)),
        ])
        for (name, value) in Session.sizeFields(loaded) { record[name] = value }
        return .record(record)
    }
}
