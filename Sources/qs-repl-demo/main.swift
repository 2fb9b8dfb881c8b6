import Foundation
import QSREPL

/// Echoes each input as "ran: <input>"; `wait` runs until Ctrl-C (or 10 s) to exercise
/// cancellation. Braces must balance before an input is complete.
final class EchoEvaluator: LineEvaluator {
    func evaluate(_ source: String) {
        if source.trimmingCharacters(in: .whitespaces) == "wait" {
            let deadline = Date().addingTimeInterval(10)
            while !Cancellation.isRequested && Date() < deadline { usleep(10_000) }
            print(Cancellation.isRequested ? "cancelled" : "waited")
        } else {
            print("ran: \(source)")
        }
        fflush(nil)
    }

    func isComplete(_ source: String) -> Bool {
        source.filter { $0 == "{" }.count <= source.filter { $0 == "}" }.count
    }
}

/// A few commands shaped like qs's own, for trying and testing the REPL without the interpreter.
final class DemoCompletion: CompletionSource {
    let commandNames = ["quantize", "load", "eval", "prune", "print", "let", "wait", "help"]
    let layerNames =
        ["embed", "head"]
        + (0..<3).flatMap { index in
            ["attn.q", "attn.k", "attn.v", "attn.o", "mlp.up", "mlp.down", "mlp.gate"].map { "layer.\(index).\($0)" }
        }
    let registryNames = ["smollm2-135m", "minilm-l6", "shakespeare", "bbc-news"]
    let variableNames = ["base", "r"]

    func optionNames(command: String) -> [String] {
        switch command {
        case "quantize": ["bits", "group", "method"]
        case "eval": ["ctx", "stride"]
        default: []
        }
    }

    func flagNames(command: String) -> [String] { command == "quantize" ? ["asym", "sym"] : [] }

    func optionValues(command: String, option: String) -> [String] {
        switch (command, option) {
        case ("quantize", "method"): ["gptq", "awq", "rtn"]
        case ("quantize", "bits"): ["2", "3", "4", "8"]
        default: []
        }
    }

    func argumentKinds(command: String, argumentIndex: Int) -> ArgumentKinds {
        switch (command, argumentIndex) {
        case ("quantize", 0), ("prune", 1): .layerPattern
        case ("load", 0): [.path, .registryName]
        case ("eval", 1): .registryName
        case ("print", _): .variable
        default: []
        }
    }

    func argumentWords(command: String, argumentIndex: Int) -> [String] {
        switch (command, argumentIndex) {
        case ("eval", 0): ["ppl", "kl", "fidelity"]
        case ("prune", 0): ["global", "layer"]
        case ("help", 0): commandNames
        default: []
        }
    }
}

REPL(evaluator: EchoEvaluator(), completion: DemoCompletion(), historyPath: REPL.defaultHistoryPath()).run()
