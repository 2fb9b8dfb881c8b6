import Foundation
import Testing

@testable import QSREPL

/// A completion source shaped like qs's command table, with a three-layer model loaded.
final class TableSource: CompletionSource {
    let commandNames = ["quantize", "quit-all", "load", "eval", "prune", "print", "let", "save"]
    let layerNames =
        ["embed", "head"]
        + (0..<3).flatMap { index in
            ["attn.q", "attn.k", "mlp.up", "mlp.down"].map { "layer.\(index).\($0)" }
        }
    let registryNames = ["smollm2-135m", "minilm-l6", "shakespeare"]
    let variableNames = ["base", "r"]

    func optionNames(command: String) -> [String] {
        switch command {
        case "quantize": ["bits", "group", "method"]
        case "eval": ["ctx"]
        case "save": ["format", "card"]
        default: []
        }
    }

    func flagNames(command: String) -> [String] { command == "quantize" ? ["asym", "sym"] : [] }

    func optionValues(command: String, option: String) -> [String] {
        switch (command, option) {
        case ("quantize", "method"): ["gptq", "awq", "rtn"]
        case ("save", "format"): ["gptq", "safetensors", "compressed-tensors"]
        default: []
        }
    }

    func optionKinds(command: String, option: String) -> ArgumentKinds {
        (command, option) == ("save", "card") ? .path : []
    }

    func argumentKinds(command: String, argumentIndex: Int) -> ArgumentKinds {
        switch (command, argumentIndex) {
        case ("quantize", 0), ("prune", 1): .layerPattern
        case ("load", 0): [.path, .registryName]
        case ("save", 0): .path
        case ("eval", 1): .registryName
        case ("print", _): .variable
        default: []
        }
    }

    func argumentWords(command: String, argumentIndex: Int) -> [String] {
        switch (command, argumentIndex) {
        case ("eval", 0): ["ppl", "kl"]
        case ("prune", 0): ["global", "layer"]
        default: []
        }
    }
}

/// A source that answers nothing: every question falls to the protocol's defaults.
final class EmptySource: CompletionSource {}

/// A folder with `models/`, `model.gguf`, `notes.txt` and `.hidden`, removed when dropped.
final class TemporaryFolder {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("qs-completer-\(UUID().uuidString)").path
        let manager = FileManager.default
        try manager.createDirectory(atPath: path + "/models/tiny", withIntermediateDirectories: true)
        for file in ["model.gguf", "notes.txt", ".hidden", "models/a.safetensors"] {
            _ = manager.createFile(atPath: path + "/" + file, contents: Data())
        }
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

struct CompleterTests {
    let folder: TemporaryFolder
    let completer: Completer

    init() throws {
        folder = try TemporaryFolder()
        completer = Completer(
            source: TableSource(), homeDirectory: folder.path + "/models", workingDirectory: folder.path)
    }

    @Test(
        "what is offered and inserted",
        arguments: [
            // first word: commands and colon commands
            ("qua", ["quantize"], "ntize "),
            ("qu", ["quantize", "quit-all"], ""),
            (
                "",
                [
                    ":help", ":history", ":quit", "eval", "let", "load", "print", "prune", "quantize", "quit-all",
                    "save",
                ], ""
            ),
            (":h", [":help", ":history"], ""),
            (":q", [":quit"], "uit "),
            ("xyz", [], ""),
            // options, flags and values; those already given are not offered again
            ("quantize layer.* b", ["bits="], "its="),
            ("quantize layer.* ", ["asym", "bits=", "group=", "method=", "sym"], ""),
            ("quantize layer.* bits=4 a", ["asym"], "sym "),
            ("quantize layer.* asym bits=4 ", ["group=", "method=", "sym"], ""),
            ("quantize layer.* method=g", ["method=gptq"], "ptq "),
            ("quantize layer.* method=", ["method=awq", "method=gptq", "method=rtn"], ""),
            ("quantize layer.* method=x", [], ""),
            ("save out format=c", ["format=compressed-tensors"], "ompressed-tensors "),
            // layer names one segment at a time, and after a glob
            ("quantize ", ["asym", "bits=", "embed", "group=", "head", "layer.", "method=", "sym"], ""),
            ("quantize layer.1", ["layer.1."], "."),
            ("quantize layer.1.a", ["layer.1.attn."], "ttn."),
            ("quantize layer.1.attn.", ["layer.1.attn.k", "layer.1.attn.q"], ""),
            ("quantize layer.1.attn.q", ["layer.1.attn.q"], " "),
            ("quantize l", ["layer."], "ayer."),
            ("quantize layer.", ["layer.0.", "layer.1.", "layer.2."], ""),
            ("quantize e", ["embed"], "mbed "),
            ("quantize layer.*.m", ["layer.*.mlp."], "lp."),
            ("quantize layer.*.mlp.d", ["layer.*.mlp.down"], "own "),
            ("quantize layer.[0-1].a", ["layer.[0-1].attn."], "ttn."),
            ("quantize layer.*", [], ""),
            ("prune g", ["global"], "lobal "),
            ("prune global l", ["layer."], "ayer."),
            ("prune global ", ["embed", "head", "layer."], ""),
            ("prune layer layer.2.m", ["layer.2.mlp."], "lp."),
            // fixed words, registry names, variables, statements after `=` and braces
            ("eval p", ["ppl"], "pl "),
            ("eval ppl sh", ["shakespeare"], "akespeare "),
            ("let r = eval ppl sh", ["shakespeare"], "akespeare "),
            ("let r = qu", ["quantize", "quit-all"], ""),
            ("if x { quantize layer.0.m", ["layer.0.mlp."], "lp."),
            ("print b", ["base"], "ase "),
            (":help x", [], ""),
        ])
    func completes(line: String, expected: [String], insertion: String) {
        let result = completer.complete(beforeCursor: line)
        #expect(result.candidates.map(\.text) == expected, "\(line)")
        #expect(result.insertion == insertion, "\(line)")
    }

    @Test(
        "file paths, with folders left open and ~ kept",
        arguments: [
            ("load mo", ["model.gguf", "models/"], "del"),
            ("load models", ["models/"], "/"),
            ("load models/", ["models/a.safetensors", "models/tiny/"], ""),
            ("load models/t", ["models/tiny/"], "iny/"),
            ("load ./n", ["./notes.txt"], "otes.txt "),
            ("load ~", ["~/"], "/"),
            ("load ~/", ["~/a.safetensors", "~/tiny/"], ""),
            ("load ~/a", ["~/a.safetensors"], ".safetensors "),
            ("load ./.h", ["./.hidden"], "idden "),
            ("load sm", ["smollm2-135m"], "ollm2-135m "),
            ("save \"mod", ["\"model.gguf\"", "\"models/"], "el"),
            ("save \"model.g", ["\"model.gguf\""], "guf\" "),
            ("save out card=n", ["card=notes.txt"], "otes.txt "),
            ("load nowhere/x", [], ""),
        ])
    func completesPaths(line: String, expected: [String], insertion: String) {
        let result = completer.complete(beforeCursor: line)
        #expect(result.candidates.map(\.text) == expected, "\(line)")
        #expect(result.insertion == insertion, "\(line)")
    }

    @Test func absolutePathsAreListed() {
        let result = completer.complete(beforeCursor: "load \(folder.path)/no")
        #expect(result.candidates.map(\.text) == ["\(folder.path)/notes.txt"])
    }

    @Test func hiddenFilesNeedADot() {
        let texts = completer.complete(beforeCursor: "load ./").candidates.map(\.text)
        #expect(!texts.contains("./.hidden"))
        #expect(texts.contains("./model.gguf"))
    }

    @Test func optionValuesAreListedByValue() {
        let result = completer.complete(beforeCursor: "quantize layer.* method=")
        #expect(result.candidates.map(\.display) == ["awq", "gptq", "rtn"])
        #expect(result.commonPrefix == "method=")
    }

    @Test func layerSegmentsAreListedBySegment() {
        let result = completer.complete(beforeCursor: "quantize layer.1.")
        #expect(result.candidates.map(\.display) == ["attn.", "mlp."])
    }

    @Test func textAfterTheCursorIsIgnored() {
        let line = "quantize layer.1.a bits=4"
        let cursor = "quantize layer.1.a".utf8.count
        #expect(completer.complete(line: line, cursor: cursor).insertion == "ttn.")
    }

    @Test func cursorIsCountedInUTF8Bytes() {
        let line = "print \"é x\" b"
        #expect(completer.complete(line: line, cursor: line.utf8.count).candidates.map(\.text) == ["base"])
    }

    @Test func anEmptySourceOffersOnlyColonCommands() {
        let empty = Completer(source: EmptySource(), workingDirectory: folder.path)
        #expect(empty.complete(beforeCursor: "").candidates.map(\.text) == Completer.colonCommands)
        #expect(empty.complete(beforeCursor: "load m").candidates.isEmpty)
    }

    @Test func numbersSortByValue() {
        #expect(Completer.naturalLess("layer.2.", "layer.10."))
        #expect(!Completer.naturalLess("layer.10.", "layer.2."))
        #expect(Completer.naturalLess("a", "ab"))
        #expect(!Completer.naturalLess("ab", "ab"))
    }

    @Test(
        "globs",
        arguments: [
            ("layer.*.", "layer.3.attn.", true),
            ("layer.*", "layer.", true),
            ("layer.?.", "layer.12.", false),
            ("layer.[0-5].", "layer.5.", true),
            ("layer.[0-5].", "layer.12.", false),
            ("layer.[0-15].", "layer.12.", true),
            ("layer.[ab].", "layer.b.", true),
            ("embed", "embed.", false),
        ])
    func globMatches(pattern: String, text: String, matches: Bool) {
        #expect(Glob(pattern).matches(text[...]) == matches)
    }
}

struct TabCompletionTests {
    private func result(_ word: String, _ texts: [String]) -> CompletionResult {
        CompletionResult(word: word, candidates: texts.map { CompletionCandidate(text: $0, isFinal: true) })
    }

    @Test func firstTabInsertsTheCommonPrefixSecondLists() {
        var tab = TabCompletion()
        let first = tab.press(line: "q", cursor: 1, result: result("q", ["quantize", "quit"]))
        #expect(first == .insert("u"))
        let second = tab.press(line: "qu", cursor: 2, result: result("qu", ["quantize", "quit"]))
        #expect(second == .list(["quantize", "quit"]))
    }

    @Test func anAmbiguousFirstTabBeepsThenLists() {
        var tab = TabCompletion()
        let candidates = result("qu", ["quantize", "quit"])
        #expect(tab.press(line: "qu", cursor: 2, result: candidates) == .beep)
        #expect(tab.press(line: "qu", cursor: 2, result: candidates) == .list(["quantize", "quit"]))
    }

    @Test func aChangedLineStartsOver() {
        var tab = TabCompletion()
        #expect(tab.press(line: "qu", cursor: 2, result: result("qu", ["quantize", "quit"])) == .beep)
        #expect(tab.press(line: "x qu", cursor: 4, result: result("qu", ["quantize", "quit"])) == .beep)
    }

    @Test func aSingleCandidateIsCompletedWithASpace() {
        var tab = TabCompletion()
        #expect(tab.press(line: "qua", cursor: 3, result: result("qua", ["quantize"])) == .insert("ntize "))
    }

    @Test func nothingToOfferBeeps() {
        var tab = TabCompletion()
        #expect(tab.press(line: "zz", cursor: 2, result: result("zz", [])) == .beep)
        #expect(tab.press(line: "zz", cursor: 2, result: result("zz", [])) == .beep)
    }

    @Test func columnsGoDownThenAcross() {
        let text = CandidateColumns.format(["a", "bb", "c", "d", "e"], width: 12)
        #expect(text == "a   c   e\nbb  d\n")
        #expect(CandidateColumns.format(["alpha", "beta"], width: 3) == "alpha\nbeta\n")
        #expect(CandidateColumns.format([], width: 80) == "")
    }
}
