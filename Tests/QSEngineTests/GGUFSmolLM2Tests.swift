import Foundation
import Testing
@testable import QSEngine

/// The real SmolLM2 GGUF (set QS_SMOLLM2_GGUF to its path) against smollm2_samples.json,
/// which the gguf package and transformers' un-permutation produced.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["QS_SMOLLM2_GGUF"] != nil))
struct GGUFSmolLM2Tests {
    var path: String { ProcessInfo.processInfo.environment["QS_SMOLLM2_GGUF"] ?? "" }

    @Test func samplesMatchReference() throws {
        let reference = try GGUFFixtures.json("smollm2_samples.json") as! [String: Any]
        let summaries = (reference["tensors"] as! [Any]).map(TensorSummary.init)
        #expect(summaries.count >= 6)
        let file = try GGUFFile(path: path)
        let tensors = Dictionary(uniqueKeysWithValues: try file.storedTensors().map { ($0.name, $0) })
        for summary in summaries {
            let tensor = try #require(tensors[summary.hfName ?? ""], "\(summary.hfName ?? "?") is missing")
            #expect(tensor.storedName == summary.ggufName)
            #expect(tensor.shape == summary.hfShape)
            #expect(summary.mismatch(try Dequantize.floats(tensor)) == nil)
        }
    }

    @Test func configAndTensors() throws {
        let file = try GGUFFile(path: path)
        let config = try file.modelConfig()
        #expect(config.architecture == .llama)
        #expect(config.vocabSize == 49152)
        #expect(config.hiddenSize == 576)
        #expect(config.intermediateSize == 1536)
        #expect(config.numHiddenLayers == 30)
        #expect(config.numAttentionHeads == 9)
        #expect(config.numKeyValueHeads == 3)
        #expect(config.headDim == 64)
        #expect(config.maxPositionEmbeddings == 8192)
        #expect(config.ropeTheta == 100000)
        #expect(config.tieWordEmbeddings)
        #expect(config.bosTokenId == 1)
        #expect(config.eosTokenId == 2)
        let tensors = try file.storedTensors()
        #expect(tensors.count == 272)
        #expect(tensors.reduce(0) { $0 + $1.count } == 134_515_008)
        #expect(tensors.filter { $0.rotaryPermutationHeads != nil }.count == 60)
        #expect(file["tokenizer.ggml.merges"]?.strings?.count == 48900)
    }
}
