import Foundation
import Testing
@testable import QSEngine

/// Checkpoints written by llm-compressor (scripts/reference/make_llmcompressor_fixtures.py: GPTQ
/// int4 sym and asym g16, int8 per channel, act-order, mixed precision by config group, FP8 per
/// tensor and per channel, 2:4 SparseGPT with int4, unstructured SparseGPT) load into qs as
/// packed weights whose values equal the peer's own dequantization exactly.
@Suite struct PeerCheckpointTests {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("export/llmc")

    static var cases: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []).filter { !$0.hasSuffix(".md") }.sorted()
    }

    @Test func everyCaseIsThere() {
        #expect(Self.cases.count >= 8)
    }

    @Test(arguments: cases)
    func loadsWithThePeersValues(name: String) throws {
        let folder = Self.root.appendingPathComponent(name)
        let checkpoint = try Checkpoint.open(folder.path)
        let model = try ModelLoader.model(for: checkpoint)
        let expected = try SafetensorsFile(path: folder.appendingPathComponent("expected.safetensors").path)
        var packed = 0
        for tensor in expected.tensors {
            let weight = try model.weights.weight(tensor.name)
            if case .packed = weight.form { packed += 1 }
            let values = try weight.floats()
            let reference = try Dequantize.floats(tensor)
            let differing = zip(values, reference).filter { $0 != $1 }.count
            #expect(values.count == reference.count && differing == 0, "\(name): \(tensor.name): \(differing) values differ")
        }
        let quantized = (try? String(contentsOf: folder.appendingPathComponent("config.json"), encoding: .utf8))?.contains("\"quantization_config\"") == true
        #expect(quantized == (packed > 0), "\(name): \(packed) packed layers")
        if quantized { #expect(packed >= 14, "\(name): every block linear packed") }
    }
}
