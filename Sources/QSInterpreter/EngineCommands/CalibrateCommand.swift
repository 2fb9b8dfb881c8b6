import Foundation
import QSEngine
import QSLanguage

/// `calibrate`: fixes the calibration windows the calibrated methods (GPTQ, `report quant`'s
/// output error) run on. Calibration is data, not a pass: nothing runs through the model here.
enum CalibrateCommand: Command {
    static let spec = CommandSpec(
        "calibrate", summary: "Fix a reproducible calibration set: random windows of a text.",
        discussion: """
            Draws `samples` windows of `seqlen` tokens at random places in the text (a registry text or a file), with the seed given or the `seed` setting, so the same recipe calibrates on the same tokens every time. Nothing runs through the model until a method needs it (`quantize ... method=gptq`, `report quant`). A later `load` draws the windows again with the new model's tokenizer.
            """,
        positionals: [ArgumentSpec("text", .path, help: "a text file or registry text (default: the 'eval_text' setting)")],
        options: [
            ArgumentSpec("samples", .integer, help: "windows", default: .number(128), range: 1...100_000),
            ArgumentSpec("seqlen", .integer, help: "tokens per window (capped at the model's limit unless given)", default: .number(512), range: 1...1_000_000),
            ArgumentSpec("seed", .integer, help: "where the windows fall (default: the 'seed' setting)", range: 0...4_294_967_295),
        ],
        resultFields: [
            ("text", "the text"), ("samples", "windows"), ("seqlen", "tokens per window"), ("seed", "the seed"),
            ("tokens", "tokens in all windows"), ("text_tokens", "tokens of the text the windows were drawn from"),
            ("starts", "where each window begins in the text's tokens (to draw the same windows elsewhere)"),
        ],
        examples: ["calibrate shakespeare", "calibrate shakespeare samples=128 seqlen=512 seed=1", "calibrate \"notes.txt\" samples=16 seqlen=256"])

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let loaded = try session.workspace.requireModel()
        let text = invocation.isGiven("text") ? try invocation.text("text") : (session.setting("eval_text")?.text ?? "shakespeare")
        let samples = try invocation.integer("samples")
        let limit = loaded.config.maxPositionEmbeddings
        // Unless given, a window is 512 tokens or the model's limit, whichever is shorter.
        let length = invocation.isGiven("seqlen") || limit <= 0 ? try invocation.integer("seqlen") : min(try invocation.integer("seqlen"), limit)
        if limit > 0, length > limit {
            throw CommandError.invalidArgument("seqlen", "\(length) is longer than \(loaded.name) allows (\(limit))")
        }
        guard samples * length <= 16_777_216 else {
            throw CommandError.invalidArgument("samples", "\(samples) windows of \(length) tokens are more than 16,777,216 tokens")
        }
        let seed = UInt64(invocation.isGiven("seed") ? try invocation.integer("seed") : Int(session.setting("seed")?.number ?? 0))
        var request = CalibrationRequest(text: text, samples: samples, length: length, seed: seed)
        let set = try Session.draw(request, loaded: loaded, session: session, invocation: invocation)
        request.drawn = (loaded.identity, set)
        session.workspace.calibration = request
        session.output("calibration: \(samples) window\(samples == 1 ? "" : "s") of \(length) tokens from \(text) (\(set.textTokens) tokens), seed \(seed)\n")
        return .record(Record([
            ("text", .string(text)), ("samples", .number(Double(samples))), ("seqlen", .number(Double(length))),
            ("seed", .number(Double(seed))), ("tokens", .number(Double(set.tokenCount))), ("text_tokens", .number(Double(set.textTokens))),
            ("starts", .list(set.starts.map { .number(Double($0)) })),
        ]))
    }
}

extension Session {
    /// The windows of a calibration request for the loaded model.
    static func draw(_ request: CalibrationRequest, loaded: LoadedModel, session: Session, invocation: CommandInvocation) throws -> CalibrationSet {
        let tokenizer = try loaded.requireTokenizer()
        // Enough of a collection for the windows to fall in many places (about 4 characters a
        // token); a single file is read whole.
        let wanted = min(64 << 20, max(1 << 20, request.samples * request.length * 8))
        let corpus = try TextCorpus.load(request.text, fetcher: session.workspace.fetcher, minimumCharacters: wanted)
        for file in corpus.replacedFiles {
            session.warn(invocation, "\(file) is not valid UTF-8; invalid bytes were replaced with U+FFFD")
        }
        let ids = tokenizer.encode(corpus.text, addSpecialTokens: false)
        do {
            return try CalibrationSet(text: request.text, tokens: ids, samples: request.samples, length: request.length, seed: request.seed)
        } catch let error as EngineError {
            throw CommandError.invalidArgument(invocation.isGiven("seqlen") ? "seqlen" : "text", error.message)
        }
    }

    /// The calibration windows for the loaded model, or an error at `argument` saying how to
    /// add them.
    func calibrationWindows(_ loaded: LoadedModel, invocation: CommandInvocation, argument: String, purpose: String) throws -> CalibrationSet {
        guard var request = workspace.calibration else {
            throw CommandError.invalidArgument(argument, "\(purpose) needs calibration data: add 'calibrate TEXT' (e.g. 'calibrate shakespeare samples=128 seqlen=512') before it")
        }
        if let drawn = request.drawn, drawn.model == loaded.identity { return drawn.set }
        let set = try Session.draw(request, loaded: loaded, session: self, invocation: invocation)
        request.drawn = (loaded.identity, set)
        workspace.calibration = request
        return set
    }
}
