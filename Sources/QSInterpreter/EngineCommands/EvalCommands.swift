import Foundation
import QSEngine
import QSLanguage

/// `eval`: perplexity, KL divergence, embedding fidelity, accuracy.
enum EvalCommand: Command {
    static let spec = CommandSpec(
                "eval", summary: "Measure the loaded model: perplexity, KL divergence, embedding fidelity, accuracy.",
                discussion: """
                    ppl: perplexity on the first `tokens` token ids of TEXT (a file or a registry text), no BOS unless `bos` is given, in non-overlapping windows of `ctx` (or windows `stride` apart, each scoring only tokens not scored before); every token but the first of a window is scored; ppl = exp(mean NLL).
                    kld: on the same windows, the KL divergence of the model's next-token distributions from the model as loaded (mean, 99th percentile, max), top-1 agreement, and both perplexities (llama.cpp's --kl-divergence figures).
                    embed (encoders): mean and worst cosine similarity of sentence embeddings (mean pooling) against the model as loaded, over the first `sentences` lines of TEXT.
                    classify (encoders): nearest-centroid topic accuracy on a topic-folder text (bbc-news): topics in name order; in each, files in name order, the first `train` for centroids, the next `test` scored; each text cut to 128 tokens.
                    Without a kind: ppl for a causal LM, embed for an encoder, on the text set with `set eval_text=...`. Results of the model as loaded are computed once per protocol and shown beside each later result.
                    """,
                positionals: [
                    ArgumentSpec("kind", .word, help: "what to measure", allowed: ["ppl", "kld", "embed", "classify"]),
                    ArgumentSpec("text", .path, help: "a text file or registry text"),
                ],
                options: [
                    ArgumentSpec("ctx", .integer, help: "window length in tokens", default: .number(512), range: 2...131_072),
                    ArgumentSpec("stride", .integer, help: "distance between window starts (default: ctx)", range: 1...131_072),
                    ArgumentSpec("tokens", .integer, help: "token ids taken from the start of the text", default: .number(4096), range: 2...100_000_000),
                    ArgumentSpec("sentences", .integer, help: "lines embedded by 'eval embed'", default: .number(128), range: 1...100_000),
                    ArgumentSpec("train", .integer, help: "training texts per topic for 'eval classify'", default: .number(20), range: 1...10_000),
                    ArgumentSpec("test", .integer, help: "test texts per topic for 'eval classify'", default: .number(20), range: 1...10_000),
                ],
                flags: [FlagSpec("bos", help: "put the BOS token before the text")],
                resultFields: [
                    ("ppl", "perplexity (ppl, kld)"), ("nll", "mean negative log-likelihood in nats (ppl)"),
                    ("tokens_per_s", "tokens run through the model per second (ppl)"),
                    ("base_ppl", "perplexity of the model as loaded"),
                    ("kld", "mean KL divergence (kld)"), ("kld_p99", "99th percentile KL divergence"),
                    ("kld_max", "largest KL divergence (kld)"), ("top1", "top-1 agreement (kld)"),
                    ("ppl_ratio", "ppl / base_ppl (kld)"),
                    ("cosine", "mean cosine (embed)"), ("cosine_min", "worst cosine (embed)"),
                    ("sentences", "sentences embedded (embed)"),
                    ("accuracy", "topic accuracy (classify)"), ("base_accuracy", "accuracy of the model as loaded (classify)"),
                    ("train", "training texts (classify)"), ("test", "test texts (classify)"), ("topics", "the topics (classify)"),
                    ("text", "the text"), ("tokens", "token ids taken from the text (ppl, kld)"),
                    ("ctx", "window"), ("stride", "stride"), ("bos", "whether a BOS token went first"),
                    ("size_mb", "weights as held, MB"),
                    ("bytes", "bytes of the weights as held"), ("bits_per_weight", "bits per parameter as held"),
                    ("params", "parameters"),
                ],
                examples: ["eval", "let r = eval ppl shakespeare ctx=512", "eval kld shakespeare tokens=2048", "eval classify bbc-news"])

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let loaded = try session.workspace.requireModel()
        let causal = loaded.model is CausalLanguageModel
        let kind = invocation["kind"]?.text ?? (causal ? "ppl" : "embed")
        let defaultText = kind == "classify" ? "bbc-news" : (session.setting("eval_text")?.text ?? "shakespeare")
        let text = Session.expandTilde(invocation["text"]?.text ?? defaultText)
        switch kind {
        case "ppl", "kld":
            guard let model = loaded.model as? CausalLanguageModel else {
                throw CommandError.invalidArgument("kind", "'\(kind)' needs a causal language model; \(loaded.name) is an encoder (try embed or classify)")
            }
            return try Session.evalLanguageModel(kind: kind, text: text, model: model, loaded: loaded, invocation: invocation, session: session)
        default:
            guard let model = loaded.model as? BERTModel else {
                throw CommandError.invalidArgument("kind", "'\(kind)' needs an encoder; \(loaded.name) is a causal language model (try ppl or kld)")
            }
            return try Session.evalEncoder(kind: kind, text: text, model: model, loaded: loaded, invocation: invocation, session: session)
        }
    }
}

/// `generate`: text from a prompt.
enum GenerateCommand: Command {
    static let spec = CommandSpec(
                "generate", summary: "Generate text from a prompt, streaming tokens as they come.",
                positionals: [ArgumentSpec("prompt", .string, help: "the prompt", required: true)],
                options: [
                    ArgumentSpec("tokens", .integer, help: "tokens to generate", default: .number(64), range: 1...100_000),
                    ArgumentSpec("temperature", .number, help: "0 picks the most likely token", default: .number(0), range: 0...100),
                    ArgumentSpec("top_k", .integer, help: "sample among the k most likely tokens", range: 1...1_000_000),
                    ArgumentSpec("seed", .integer, help: "sampling seed (default: the 'seed' setting)", range: 0...4_294_967_295),
                ],
                resultFields: [("text", "the generated text"), ("tokens", "tokens generated"), ("prefill_tok_s", "prompt tokens per second"), ("decode_tok_s", "generated tokens per second (when two or more were generated)")],
                examples: ["generate \"Once upon a time\" tokens=32", "generate \"The sea\" temperature=0.8 top_k=40 seed=1"])

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let loaded = try session.workspace.requireModel()
        guard let model = loaded.model as? CausalLanguageModel else {
            throw CommandError.failed("\(loaded.name) is an encoder: it cannot generate text")
        }
        let tokenizer = try loaded.requireTokenizer()
        let prompt = try invocation.text("prompt")
        var ids = tokenizer.encode(prompt, addSpecialTokens: true)
        if ids.isEmpty, let bos = tokenizer.bosID { ids = [bos] }
        let seed = invocation.isGiven("seed") ? try invocation.integer("seed") : Int(session.setting("seed")?.number ?? 0)
        let sampling = SamplingOptions(
            temperature: try invocation.number("temperature"),
            topK: invocation.isGiven("top_k") ? try invocation.integer("top_k") : nil, seed: UInt64(seed))
        var generated: [Int] = []
        var shown = ""
        session.output(prompt)
        let stops = Set([tokenizer.eosID, loaded.config.eosTokenId].compactMap { $0 })
        let result = try Generator.generate(
            model: model, prompt: ids, maxTokens: try invocation.integer("tokens"), sampling: sampling, stopTokens: stops,
            onToken: { id in
                generated.append(id)
                let text = tokenizer.decode(generated, skipSpecialTokens: true)
                // Print only whole characters: a token can end inside a UTF-8 sequence.
                if text.hasPrefix(shown), !text.hasSuffix("\u{FFFD}") {
                    session.output(String(text.dropFirst(shown.count)))
                    shown = text
                }
            }, isCancelled: session.isCancelled)
        let text = tokenizer.decode(result.tokens, skipSpecialTokens: true)
        if text.count > shown.count, text.hasPrefix(shown) { session.output(String(text.dropFirst(shown.count))) }
        session.output("\n")
        var record = Record([
            ("text", .string(text)), ("tokens", .number(Double(result.tokens.count))),
            ("prefill_tok_s", .number(result.prefillTokensPerSecond.rounded())),
        ])
        // One token times no decoding step: no decode speed rather than 0 tok/s.
        if result.tokens.count >= 2 { record["decode_tok_s"] = .number((result.decodeTokensPerSecond * 10).rounded() / 10) }
        return .record(record)
    }
}

/// `bench`: prefill and decode speed, peak memory.
enum BenchCommand: Command {
    static let spec = CommandSpec(
                "bench", summary: "Measure prefill and decode speed and peak memory.",
                options: [
                    ArgumentSpec("prompt", .integer, help: "prompt tokens (taken from the eval text)", default: .number(512), range: 1...131_072),
                    // Decoding is timed from the second generated token on: one alone times nothing.
                    ArgumentSpec("gen", .integer, help: "tokens to generate (at least 2: decoding is timed after the first)", default: .number(128), range: 2...131_072),
                    ArgumentSpec("compare", .path, help: "a GGUF file to measure the same way in llama.cpp (llama-cpp-python)"),
                ],
                resultFields: [
                    ("prefill_tok_s", "prompt tokens per second"), ("decode_tok_s", "generated tokens per second"),
                    ("peak_mb", "peak resident memory, MB"), ("size_mb", "weights as held, MB"),
                    ("bytes", "bytes of the weights as held"), ("bits_per_weight", "bits per parameter as held"),
                    ("params", "parameters"),
                    ("kernels", "the decode kernels' path: avx512, avx2 or portable, +int8 with `set kernels=int8`"),
                    ("llama_prefill_tok_s", "with compare=: llama.cpp's prompt tokens per second"),
                    ("llama_decode_tok_s", "with compare=: llama.cpp's generated tokens per second"),
                    ("llama_peak_mb", "with compare=: the peak resident memory of llama.cpp's process, MB"),
                ],
                examples: ["bench", "bench prompt=128 gen=32", "bench compare=smollm2-q4_0.gguf"])

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let loaded = try session.workspace.requireModel()
        guard let model = loaded.model as? CausalLanguageModel else {
            throw CommandError.failed("\(loaded.name) is an encoder: bench measures generation")
        }
        let promptCount = try invocation.integer("prompt")
        let gen = try invocation.integer("gen")
        let text = session.setting("eval_text")?.text ?? "shakespeare"
        let prompt = try Session.tokens(of: text, count: promptCount, bos: false, loaded: loaded, session: session, invocation: invocation)
        var compare: String?
        if invocation.isGiven("compare") {
            let path = Session.expandTilde(try invocation.text("compare"))
            guard FileAccess.kind(path) == .regular else { throw CommandError.invalidArgument("compare", "\(path) is not a file") }
            guard path.hasSuffix(".gguf") else { throw CommandError.invalidArgument("compare", "llama.cpp runs GGUF files; \(path) does not end in .gguf") }
            compare = path
        }
        // Convert the weights the decode kernels do not take first, so that neither figure
        // includes it (with more rows than the kernels take, as prefill runs); the others are
        // never copied, and prefill converts them by tiles.
        let conversions = ConversionCache.generation()
        _ = try model.forward(Array(prompt.prefix(WeightProduct.blockKernelRows + 1)), conversions: conversions)
        let result = try Generator.generate(
            model: model, prompt: prompt, maxTokens: gen, sampling: SamplingOptions(), conversions: conversions,
            isCancelled: session.isCancelled)
        let peak = Session.peakResidentMegabytes()
        session.output("bench  \(loaded.name): prompt \(prompt.count) tokens, \(result.tokens.count) generated\n")
        session.output("  prefill \(fmt(result.prefillTokensPerSecond, 1)) tok/s   decode \(fmt(result.decodeTokensPerSecond, 1)) tok/s   peak memory \(fmt(peak, 0)) MB   kernels \(BlockKernels.pathName)\n")
        var record = Record([
            ("prefill_tok_s", .number((result.prefillTokensPerSecond * 10).rounded() / 10)),
            ("decode_tok_s", .number((result.decodeTokensPerSecond * 10).rounded() / 10)), ("peak_mb", .number(peak.rounded())),
            ("kernels", .string(BlockKernels.pathName)),
        ])
        for (name, value) in Session.sizeFields(loaded) { record[name] = value }
        if let compare {
            let llama = try LlamaComparison.measure(file: compare, prompt: prompt, gen: gen, threads: ThreadCount.configured)
            session.output("  llama.cpp \((compare as NSString).lastPathComponent): prefill \(fmt(llama.prefill, 1)) tok/s   decode \(fmt(llama.decode, 1)) tok/s   peak memory \(fmt(llama.peakMB, 0)) MB\n")
            session.output("  qs / llama.cpp: prefill \(fmt(result.prefillTokensPerSecond / llama.prefill, 2))×   decode \(fmt(result.decodeTokensPerSecond / llama.decode, 2))×\n")
            record["llama_prefill_tok_s"] = .number((llama.prefill * 10).rounded() / 10)
            record["llama_decode_tok_s"] = .number((llama.decode * 10).rounded() / 10)
            record["llama_peak_mb"] = .number(llama.peakMB.rounded())
        }
        return .record(record)
    }
}

extension Session {
    /// Size fields every evaluation record carries.
    static func sizeFields(_ loaded: LoadedModel) -> [(name: String, value: Value)] {
        sizeFields(bytes: loaded.heldBytes, params: loaded.parameterCount)
    }

    /// The first `count` token ids of a text (with BOS first when asked).
    static func tokens(
        of textName: String, count: Int, bos: Bool, loaded: LoadedModel, session: Session, invocation: CommandInvocation
    ) throws -> [Int] {
        let tokenizer = try loaded.requireTokenizer()
        // About 4 characters a token in English; read generously so that a prefix suffices.
        let corpus = try TextCorpus.load(textName, fetcher: session.workspace.fetcher, minimumCharacters: count * 8 + 4096)
        for file in corpus.replacedFiles {
            session.warn(invocation, "\(file) is not valid UTF-8; invalid bytes were replaced with U+FFFD")
        }
        var ids: [Int] = []
        if bos {
            guard let bosID = tokenizer.bosID else { throw CommandError.failed("the tokenizer has no BOS token") }
            ids.append(bosID)
        }
        ids += tokenizer.encode(corpus.text, addSpecialTokens: false)
        if ids.count < count {
            session.note(invocation, "\(textName) has \(ids.count) tokens; all are used")
        }
        return Array(ids.prefix(count))
    }


    /// When a measured number is NaN or infinite, it stays so in the record (printed as nan),
    /// and a warning says where the model's values first stop being finite.
    static func warnIfNotFinite(
        _ fields: [(name: String, value: Value)], model: BlockModel, tokens: [Int], invocation: CommandInvocation,
        session: Session
    ) throws {
        let bad = fields.filter { if case .number(let x) = $0.value { !x.isFinite } else { false } }.map(\.name)
        guard !bad.isEmpty else { return }
        let location = try NonFiniteProbe.locate(model, tokens: tokens) ?? "every weight and activation of the first window is finite"
        session.warn(invocation, "\(bad.joined(separator: ", ")) \(bad.count == 1 ? "is" : "are") not finite: \(location)")
    }

    static func evalLanguageModel(
        kind: String, text: String, model: CausalLanguageModel, loaded: LoadedModel, invocation: CommandInvocation,
        session: Session
    ) throws -> Value {
        let limit = loaded.config.maxPositionEmbeddings
        // Unless given, the context is 512 or the model's limit, whichever is shorter.
        let context = invocation.isGiven("ctx") || limit <= 0 ? try invocation.integer("ctx") : min(try invocation.integer("ctx"), limit)
        let stride = invocation.isGiven("stride") ? try invocation.integer("stride") : context
        guard stride <= context else { throw CommandError.invalidArgument("stride", "must not exceed ctx (\(context))") }
        if limit > 0, context > limit {
            throw CommandError.invalidArgument("ctx", "\(context) is longer than \(loaded.name) allows (\(limit))")
        }
        guard context >= 2 else {
            throw CommandError.failed("\(loaded.name) takes \(limit) position(s) (max_position_embeddings); a window that scores a token needs at least 2")
        }
        let bos = invocation.has("bos")
        let ids = try tokens(of: text, count: try invocation.integer("tokens"), bos: bos, loaded: loaded, session: session, invocation: invocation)
        let measured = PerplexityProtocol(text: text, tokens: ids.count, context: context, stride: stride, bos: bos)
        let protocolLine = "\(text): \(ids.count) tokens, ctx \(context), stride \(stride), \(bos ? "BOS" : "no BOS")"
        let bar = ProgressBar(label: "eval \(kind)", unit: "tok")
        defer { bar.finish() }
        var fields: [(name: String, value: Value)] = []
        if kind == "kld" {
            guard let reference = try loaded.reference as? CausalLanguageModel else { throw CommandError.failed("no reference model") }
            let r = try Divergence.evaluate(
                model: model, reference: reference, tokens: ids, measuredWith: measured,
                progress: { bar.update($0, of: $1) }, isCancelled: session.isCancelled)
            bar.finish()
            fields = [
                ("kld", .number(r.meanKLD)), ("kld_p99", .number(r.p99KLD)), ("kld_max", .number(r.maxKLD)),
                ("top1", .number(r.top1Agreement)), ("ppl", .number(r.perplexity)), ("base_ppl", .number(r.basePerplexity)),
                ("ppl_ratio", .number(r.perplexityRatio)),
            ]
            session.output("eval kld  \(protocolLine)\n")
            session.output("  mean KLD \(fmt(r.meanKLD, 6))  p99 \(fmt(r.p99KLD, 6))  max \(fmt(r.maxKLD, 6))  top-1 \(fmt(r.top1Agreement * 100, 2))%\n")
            session.output("  ppl \(fmt(r.perplexity, 4)) vs \(fmt(r.basePerplexity, 4)) as loaded (ratio \(fmt(r.perplexityRatio, 4)))\n")
        } else {
            let r = try Perplexity.evaluate(
                model: model, tokens: ids, measuredWith: measured, progress: { bar.update($0, of: $1) },
                isCancelled: session.isCancelled)
            bar.finish()
            fields = [("ppl", .number(r.perplexity)), ("nll", .number(r.meanNLL)), ("tokens_per_s", .number(r.tokensPerSecond.rounded()))]
            let key = "ppl|\(text)|\(ids.count)|\(context)|\(stride)|\(bos)"
            let sizeNow = sizeFields(loaded)
            if !loaded.isModified {
                session.workspace.baselines[key] = .record(Record(fields + sizeNow))
            } else if session.workspace.baselines[key] == nil {
                guard let reference = try loaded.reference as? CausalLanguageModel else { throw CommandError.failed("no reference model") }
                let baseBar = ProgressBar(label: "baseline", unit: "tok")
                let base = try Perplexity.evaluate(
                    model: reference, tokens: ids, measuredWith: measured, progress: { baseBar.update($0, of: $1) },
                    isCancelled: session.isCancelled)
                baseBar.finish()
                let baseSize = sizeFields(
                    bytes: loaded.checkpoint.tensors.reduce(0) { $0 + $1.byteCount }, params: loaded.parameterCount)
                session.workspace.baselines[key] = .record(Record([("ppl", .number(base.perplexity)), ("nll", .number(base.meanNLL)), ("tokens_per_s", .number(base.tokensPerSecond.rounded()))] + baseSize))
            }
            let baseline = session.workspace.baselines[key]?.record
            if let baseline, let basePPL = baseline["ppl"]?.number {
                fields.append(("base_ppl", .number(basePPL)))
            }
            session.output("eval ppl  \(protocolLine)\n")
            session.output(comparisonTable(now: Record(fields + sizeNow), base: loaded.isModified ? baseline : nil))
        }
        try warnIfNotFinite(fields, model: model, tokens: Array(ids.prefix(context)), invocation: invocation, session: session)
        var record = Record(fields)
        for (name, value) in [("text", Value.string(text)), ("tokens", .number(Double(ids.count))), ("ctx", .number(Double(context))), ("stride", .number(Double(stride))), ("bos", .bool(bos))] {
            record[name] = value
        }
        for (name, value) in sizeFields(loaded) { record[name] = value }
        return .record(record)
    }

    /// The table printed by `eval`: each metric now, as loaded, and the change.
    static func comparisonTable(now: Record, base: Record?) -> String {
        let rows: [(String, String, Int)] = [("ppl", "ppl", 4), ("size_mb", "size MB", 2), ("bits_per_weight", "bits/weight", 3), ("tokens_per_s", "tokens/s", 0)]
        var out = base == nil ? "" : "  \("".padding(toLength: 12, withPad: " ", startingAt: 0))  \("now".leftPadded(12))  \("as loaded".leftPadded(12))  \("change".leftPadded(9))\n"
        for (key, label, digits) in rows {
            guard let value = now[key]?.number else { continue }
            var line = "  \(label.padding(toLength: 12, withPad: " ", startingAt: 0))  \(fmt(value, digits).leftPadded(12))"
            if let base, let old = base[key]?.number {
                let change = old != 0 ? (value - old) / old * 100 : 0
                line += "  \(fmt(old, digits).leftPadded(12))  \(((change >= 0 ? "+" : "") + fmt(change, 2) + "%").leftPadded(9))"
            }
            out += line + "\n"
        }
        return out
    }

    static func evalEncoder(
        kind: String, text: String, model: BERTModel, loaded: LoadedModel, invocation: CommandInvocation, session: Session
    ) throws -> Value {
        let tokenizer = try loaded.requireTokenizer()
        guard let reference = try loaded.reference as? BERTModel else { throw CommandError.failed("no reference model") }
        // Texts are cut to the sentence-transformers length, or the model's own when shorter.
        let limit = min(EncoderEvaluation.maxTokens, loaded.config.maxPositionEmbeddings)
        let encode: (String) -> [Int] = { Array(tokenizer.encode($0, addSpecialTokens: true).prefix(limit)) }
        var fields: [(name: String, value: Value)] = []
        if kind == "embed" {
            let count = try invocation.integer("sentences")
            let corpus = try TextCorpus.load(text, fetcher: session.workspace.fetcher, minimumCharacters: count * 400)
            let sentences = EncoderEvaluation.sentences(of: corpus.text, limit: count)
            let bar = ProgressBar(label: "eval embed", unit: "models")
            let r = try EncoderEvaluation.fidelity(
                model: model, reference: reference, sentences: sentences.map(encode), text: text,
                progress: { bar.update($0, of: $1) }, isCancelled: session.isCancelled)
            bar.finish()
            fields = [("cosine", .number(r.meanCosine)), ("cosine_min", .number(r.worstCosine)), ("sentences", .number(Double(r.sentences)))]
            try warnIfNotFinite(fields, model: model, tokens: sentences.first.map(encode) ?? [], invocation: invocation, session: session)
            session.output("eval embed  \(text): \(r.sentences) sentences\n  mean cosine \(fmt(r.meanCosine, 6))  worst \(fmt(r.worstCosine, 6))\n")
        } else {
            let folder: String
            if let entry = Registry.entry(text) {
                folder = try session.workspace.fetcher.fetch(entry)
            } else {
                folder = text
            }
            let trainCount = try invocation.integer("train")
            let testCount = try invocation.integer("test")
            let split = try EncoderEvaluation.split(folder: folder, trainPerTopic: trainCount, testPerTopic: testCount)
            let read: ([(Int, String)]) throws -> [EncoderEvaluation.Document] = { items in
                try items.map { label, path in
                    let (content, _) = try TextCorpus.decode(path)
                    return EncoderEvaluation.Document(label: label, ids: Array(encode(content).prefix(128)))
                }
            }
            let train = try read(split.train)
            let test = try read(split.test)
            let accuracy = try EncoderEvaluation.nearestCentroidAccuracy(
                model: model, train: train, test: test, classes: split.topics.count, isCancelled: session.isCancelled)
            fields = [("accuracy", .number(accuracy)), ("train", .number(Double(train.count))), ("test", .number(Double(test.count))), ("topics", .list(split.topics.map { .string($0) }))]
            try warnIfNotFinite(fields, model: model, tokens: train.first?.ids ?? [], invocation: invocation, session: session)
            let key = "classify|\(text)|\(trainCount)|\(testCount)"
            if !loaded.isModified {
                session.workspace.baselines[key] = .number(accuracy)
            } else if session.workspace.baselines[key] == nil {
                session.workspace.baselines[key] = .number(try EncoderEvaluation.nearestCentroidAccuracy(
                    model: reference, train: train, test: test, classes: split.topics.count, isCancelled: session.isCancelled))
            }
            var line = "eval classify  \(text): \(split.topics.count) topics, \(train.count) train, \(test.count) test\n  accuracy \(fmt(accuracy * 100, 2))%"
            if loaded.isModified, let base = session.workspace.baselines[key]?.number {
                fields.append(("base_accuracy", .number(base)))
                line += " (as loaded \(fmt(base * 100, 2))%)"
            }
            session.output(line + "\n")
        }
        var record = Record(fields)
        record["text"] = .string(text)
        for (name, value) in sizeFields(loaded) { record[name] = value }
        return .record(record)
    }



    /// The process's peak resident memory in MB (10^6 bytes).
    static func peakResidentMegabytes() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) * 1024 / 1e6
    }
}

/// A number with a fixed count of digits after the point.
func fmt(_ value: Double, _ digits: Int) -> String {
    if !value.isFinite { return "\(value)" }
    if digits == 0 { return String(Int(value.rounded())) }
    return String(format: "%.\(digits)f", value)
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
