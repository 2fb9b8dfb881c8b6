import Foundation
import QSEngine

/// A model loaded in a session: the checkpoint, the weights being compressed, the model
/// computing with them, and its tokenizer.
package final class LoadedModel {
    /// The name or path it was loaded by.
    package let name: String
    package let checkpoint: Checkpoint
    package let weights: WeightStore
    package let model: BlockModel
    package let tokenizer: Tokenizer?
    /// Why the checkpoint's tokenizer could not be read, when it could not: the model still
    /// loads (its weights can be inspected and compressed), and text commands say why they fail.
    package let tokenizerProblem: String?
    /// Tells this load apart from every other (what was drawn for one model is not another's).
    package let identity = UUID()
    /// Parameters when it was loaded (structured pruning removes some).
    package let loadedParameterCount: Int
    private var referenceModel: BlockModel?

    package init(name: String, checkpoint: Checkpoint) throws {
        self.name = name
        self.checkpoint = checkpoint
        model = try ModelLoader.model(for: checkpoint)
        weights = model.weights
        loadedParameterCount = model.weights.parameterCount
        do {
            tokenizer = try Tokenizer.load(for: checkpoint)
            tokenizerProblem = nil
        } catch {
            tokenizer = nil
            tokenizerProblem = "\(error)"
        }
    }

    package var config: ModelConfig { model.config }

    /// The model as loaded: a second model over the checkpoint's stored tensors. It holds no
    /// converted weights of its own; each evaluation converts what it needs into its own
    /// bounded cache, so comparing against it never keeps a second fp32 copy of the model.
    package var reference: BlockModel {
        get throws {
            if let referenceModel { return referenceModel }
            let made = try ModelLoader.model(for: checkpoint)
            referenceModel = made
            return made
        }
    }

    /// Whether any weight differs from the checkpoint.
    package var isModified: Bool { weights.isModified }

    /// The tokenizer, or an error saying the model has none.
    package func requireTokenizer() throws -> Tokenizer {
        guard let tokenizer else {
            if let tokenizerProblem { throw EngineError("the tokenizer could not be read: \(tokenizerProblem)") }
            throw EngineError(path: checkpoint.path, "has no tokenizer (no tokenizer.json, no tokenizer.ggml.* metadata)")
        }
        return tokenizer
    }

    /// Bytes of the weights as held now, each in its current form.
    package var heldBytes: Int { weights.heldBytes }

    /// How the model is held now, in a few words: `as loaded`, or its quantization schemes (the
    /// two most common, then how many more), the pruning asked for, and whether structured
    /// pruning removed parameters.
    package var schemeLabel: String {
        guard isModified else { return "as loaded" }
        var schemes: [(String, Int)] = [], pruning: [(String, Int)] = []
        func count(_ list: inout [(String, Int)], _ key: String) {
            if let i = list.firstIndex(where: { $0.0 == key }) { list[i].1 += 1 } else { list.append((key, 1)) }
        }
        for entry in model.names.entries where entry.kind.isMatrix {
            guard let weight = try? weights.weight(entry.weight) else { continue }
            if weight.isQuantized { count(&schemes, weight.formName) }
            if let mask = weight.mask { count(&pruning, mask.requested ?? "pruned") }
        }
        schemes.sort { $0.1 > $1.1 }
        pruning.sort { $0.1 > $1.1 }
        var parts: [String] = []
        if !schemes.isEmpty {
            parts.append(schemes.prefix(2).map(\.0).joined(separator: " + ") + (schemes.count > 2 ? " + \(schemes.count - 2) more" : ""))
        }
        if let first = pruning.first { parts.append(first.0 + (first.0.hasSuffix("%") || first.0.contains(":") ? " pruned" : "") + (pruning.count > 1 ? " + \(pruning.count - 1) more" : "")) }
        if parameterCount < loadedParameterCount { parts.append("structured") }
        return parts.isEmpty ? "weights changed" : parts.joined(separator: ", ")
    }

    /// Parameters as held now (structured pruning removes some).
    package var parameterCount: Int { weights.parameterCount }
}

/// What a session holds besides variables: the loaded model, named snapshots, and evaluation
/// results of the loaded model cached per protocol.
package final class Workspace {
    package var loaded: LoadedModel?
    package var snapshots: [String: WeightStore.Snapshot] = [:]
    /// Baseline results of the model as loaded, by protocol key.
    package var baselines: [String: Value] = [:]
    /// What `calibrate` asked for, and the windows drawn for the model loaded then (a later
    /// `load` draws them again with the new model's tokenizer when a method needs them).
    package var calibration: CalibrationRequest?
    /// Resolves registry names ($QS_HOME, else ~/.cache/qs).
    package let fetcher = Fetcher()
    /// The built-in commands that ran since the model was loaded (the `load` included), with
    /// their source and results: what `save` records in qs.json and reports show.
    package private(set) var history: [CommandRecord] = []

    /// Notes a command that completed; a `load` starts the history again.
    func record(_ command: String, source: String, file: String, line: Int, result: Value) {
        if command == "load" { history.removeAll() }
        guard loaded != nil, !["help", "print"].contains(command) else { return }
        // What the model was when an evaluation or benchmark measured it (the report labels
        // its points with this).
        let state = ["eval", "bench"].contains(command) ? loaded?.schemeLabel : nil
        history.append(CommandRecord(command: command, source: source, file: file, line: line, result: result, state: state))
    }

    /// The loaded model, or an error telling the person to load one.
    package func requireModel() throws -> LoadedModel {
        guard let loaded else { throw CommandError.failed("no model is loaded; use 'load NAME|PATH' first") }
        return loaded
    }
}

/// A `calibrate` request and the windows drawn for one loaded model.
package struct CalibrationRequest {
    package var text: String
    package var samples: Int
    package var length: Int
    package var seed: UInt64
    package var drawn: (model: UUID, set: CalibrationSet)?
}

/// One command that ran: its name, its text, where it was written, and its result.
package struct CommandRecord {
    package var command: String
    package var source: String
    package var file: String
    package var line: Int
    package var result: Value
    /// For evaluations and benchmarks: how the model was held when it ran (`as loaded`, or its
    /// schemes and pruning, as `int4 g32 sym + int8 g32 sym, 20% pruned`).
    package var state: String?
}
