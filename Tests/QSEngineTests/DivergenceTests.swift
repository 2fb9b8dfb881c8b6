import Foundation
import Testing
@testable import QSEngine

@Suite struct DivergenceTests {
    static func tinyLlama() throws -> Checkpoint {
        let folder = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("arch/llama")
        return try Checkpoint.open(folder.path)
    }

    static let tokens = (0 ..< 40).map { ($0 * 37 + 11) % 96 }

    @Test func identicalModelsAgreeExactly() throws {
        let checkpoint = try Self.tinyLlama()
        let model = try #require(try ModelLoader.model(for: checkpoint) as? CausalLanguageModel)
        let reference = try #require(try ModelLoader.model(for: checkpoint) as? CausalLanguageModel)
        let measured = PerplexityProtocol(text: "t", tokens: Self.tokens.count, context: 16, stride: 16, bos: false)
        let r = try Divergence.evaluate(model: model, reference: reference, tokens: Self.tokens, measuredWith: measured)
        #expect(r.meanKLD < 1e-6)
        #expect(r.top1Agreement == 1)
        #expect(abs(r.perplexityRatio - 1) < 1e-9)
        let ppl = try Perplexity.evaluate(model: model, tokens: Self.tokens, measuredWith: measured)
        #expect(abs(ppl.perplexity - r.basePerplexity) / ppl.perplexity < 1e-6)
        #expect(r.scored == ppl.scored)
    }

    @Test func perturbedWeightsDivergeAndSnapshotsRestore() throws {
        let checkpoint = try Self.tinyLlama()
        let model = try #require(try ModelLoader.model(for: checkpoint) as? CausalLanguageModel)
        let store = model.weights
        let reference = try #require(try ModelLoader.model(for: checkpoint) as? CausalLanguageModel)
        let name = "model.layers.0.mlp.down_proj.weight"
        let clean = store.snapshot()
        let original = try store.floats(name)
        try store.replace(name, with: original.map { $0 + 0.2 * sin($0 * 1000) })
        let measured = PerplexityProtocol(text: "t", tokens: Self.tokens.count, context: 16, stride: 16, bos: false)
        let r = try Divergence.evaluate(model: model, reference: reference, tokens: Self.tokens, measuredWith: measured)
        #expect(r.meanKLD > 1e-4)
        #expect(r.p99KLD >= r.meanKLD)
        #expect(r.maxKLD >= r.p99KLD)
        #expect(store.snapshot().changedTensors == [name])
        store.restore(clean)
        #expect(try store.floats(name) == original)
        let again = try Divergence.evaluate(model: model, reference: reference, tokens: Self.tokens, measuredWith: measured)
        #expect(again.meanKLD < 1e-6)
    }

    @Test func cancellationStopsBetweenLayers() throws {
        let checkpoint = try Self.tinyLlama()
        let model = try #require(try ModelLoader.model(for: checkpoint) as? CausalLanguageModel)
        let measured = PerplexityProtocol(text: "t", tokens: Self.tokens.count, context: 16, stride: 16, bos: false)
        var polls = 0
        do {
            _ = try Perplexity.evaluate(
                model: model, tokens: Self.tokens, measuredWith: measured,
                isCancelled: {
                    polls += 1
                    return polls > 3
                })
            Issue.record("evaluation ran to the end")
        } catch let error as EngineError {
            #expect(error == .cancelled)
        }
        // One poll before each of the two blocks, then one per window as it is scored: it
        // stopped at the second window.
        #expect(polls == 4)
    }
}
