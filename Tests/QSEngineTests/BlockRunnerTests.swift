import Foundation
import Testing
@testable import QSEngine
import QSTestSupport

@Suite struct BlockRunnerTests {
    static func model(_ name: String) throws -> BlockModel {
        let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("arch/\(name)")
        return try ModelLoader.model(for: try Checkpoint.open(folder.path))
    }

    @Test(arguments: ["llama", "qwen2", "gpt2"])
    func blockwiseBatchEqualsTheFullForward(name: String) throws {
        let model = try Self.model(name)
        let lm = try #require(model as? CausalLanguageModel)
        let sequences = [[1, 5, 9, 13, 2], [7, 7, 3], [40, 41, 42, 43, 44, 45, 46]]
        var seen: [String: Int] = [:]
        let states = try BlockRunner(model: model).runAll(sequences) { block, linear, input in
            seen["\(block):\(linear)", default: 0] += 1
            #expect(input.cols > 0 && input.rows > 0)
        }
        for (sequence, state) in zip(sequences, states) {
            let full = try lm.forward(sequence)
            let blockwise = try lm.logits(state)
            #expect(blockwise.data == full.data)
        }
        // Every linear layer of every block is observed once per sequence.
        let linears = model.names.entries.filter { $0.canonical.hasPrefix("layer.0.") && !$0.canonical.hasSuffix("norm") }
        #expect(!linears.isEmpty)
        for entry in linears { #expect(seen["0:\(entry.canonical)"] == sequences.count, "\(entry.canonical)") }
        #expect(seen.keys.allSatisfy { $0.hasPrefix("0:") || $0.hasPrefix("1:") })
    }

    @Test func changesAfterABlockReachTheNextBlocks() throws {
        let model = try Self.model("llama")
        let lm = try #require(model as? CausalLanguageModel)
        let sequence = [3, 1, 4, 1, 5, 9, 2, 6]
        let before = try lm.forward(sequence)
        let states = try BlockRunner(model: model).runAll([sequence], afterBlock: { block in
            guard block == 0 else { return }
            let name = model.names.entry("layer.0.mlp.down")!.weight
            try model.weights.replace(name, with: try model.weights.floats(name).map { $0 * 0.5 })
        })
        let after = try lm.logits(states[0])
        #expect(after.data != before.data)
        #expect(after.data == (try lm.forward(sequence)).data)
    }
}

extension BlockRunnerTests {
    @Test func groupsStayBoundedAndCoverEverySequenceInOrder() throws {
        let model = try Self.model("llama")
        let lm = try #require(model as? CausalLanguageModel)
        let sequences = (0 ..< 7).map { i in (0 ..< (3 + i)).map { ($0 * 7 + i) % 96 } }
        var seen: [Int] = []
        var groups = 0
        try BlockRunner(model: model).forEachGroup(sequences, tokensPerGroup: 12) { first, states in
            groups += 1
            #expect(states.reduce(0) { $0 + $1.rows } <= max(12, states.first?.rows ?? 0))
            for (offset, state) in states.enumerated() {
                seen.append(first + offset)
                let grouped = try lm.logits(state).data
                let whole = try lm.forward(sequences[first + offset]).data
                #expect(grouped == whole)
            }
        }
        #expect(seen == Array(0 ..< 7))
        #expect(groups > 2)
    }

    /// The block-by-block evaluation with the vocabulary in tiles scores what a plain forward
    /// pass per window scores.
    @Test func blockwisePerplexityEqualsTheWindowedOne() throws {
        let lm = try #require(try Self.model("smollm2") as? CausalLanguageModel)
        let tokens = (0 ..< 200).map { ($0 * 31 + 5) % 96 }
        let measured = PerplexityProtocol(text: "t", tokens: 200, context: 32, stride: 24, bos: false)
        var nll = 0.0
        var scored = 0
        for window in EvaluationWindows(tokens: tokens.count, context: 32, stride: 24) {
            let logits = try lm.forward(Array(tokens[window.range]))
            for position in window.scored {
                nll += Perplexity.negativeLogLikelihood(logits, row: position - 1 - window.range.lowerBound, target: tokens[position])
                scored += 1
            }
        }
        let blockwise = try Perplexity.evaluate(model: lm, tokens: tokens, measuredWith: measured)
        #expect(blockwise.scored == scored)
        #expect(abs(blockwise.meanNLL - nll / Double(scored)) < 1e-6)
    }
}

/// What the module tables declare about shared inputs is what the forward passes do: a layer
/// said to receive another's input is shown the very same values.
@Suite struct SharedInputTests {
    @Test(arguments: ["llama", "qwen2", "gpt2", "bert"])
    func layersSaidToShareAnInputSeeTheSameValues(name: String) throws {
        let model = try BlockRunnerTests.model(name)
        var inputs: [String: [Float]] = [:]
        _ = try BlockRunner(model: model).runAll([[1, 5, 9, 13, 2, 7]]) { _, linear, input in inputs[linear] = input.data }
        let sharing = model.names.entries.filter { $0.inputOf != $0.canonical }
        if name != "gpt2" { #expect(!sharing.isEmpty) }
        for entry in sharing {
            #expect(inputs[entry.canonical] != nil && inputs[entry.canonical] == inputs[entry.inputOf], "\(name): \(entry.canonical) and \(entry.inputOf)")
        }
        // No other pair of layers in a block sees the same input unannounced (o, down read their own).
        for entry in model.names.entries where entry.canonical.hasSuffix("attn.o") || entry.canonical.hasSuffix("mlp.down") {
            #expect(entry.inputOf == entry.canonical)
        }
    }
}

/// Sequences side by side (calibration's mode) give the states and observations of the plain
/// order, up to the rounding of single- against multi-threaded products.
@Suite struct ParallelSequenceTests {
    @Test func sideBySideEqualsInOrder() throws {
        let model = try BlockRunnerTests.model("llama")
        let sequences = (0 ..< 6).map { s in (0 ..< 9 + s).map { ($0 * 7 + s * 3) % 90 } }
        final class Counts: @unchecked Sendable {
            let lock = NSLock()
            var seen: [String: Int] = [:]
            func add(_ key: String) { lock.withLock { seen[key, default: 0] += 1 } }
        }
        func run(_ parallel: Bool) throws -> ([Activations], [String: Int]) {
            let counts = Counts()
            let states = try BlockRunner(model: model, parallelSequences: parallel).runAll(
                sequences, observer: { block, linear, _ in counts.add("\(block):\(linear)") }, afterBlock: { _ in })
            return (states, counts.seen)
        }
        let (plain, plainSeen) = try run(false)
        let (side, sideSeen) = try run(true)
        #expect(plainSeen == sideSeen && plainSeen["1:layer.1.mlp.down"] == sequences.count)
        for (a, b) in zip(plain, side) {
            #expect(a.rows == b.rows)
            #expect(relativeError(a.data, b.data) < 1e-5)
        }
    }
}
