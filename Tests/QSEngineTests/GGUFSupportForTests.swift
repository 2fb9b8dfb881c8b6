import Foundation
@testable import QSEngine

/// Paths and helpers shared by the GGUF and dequantization tests.
enum GGUFFixtures {
    static var folder: URL {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("gguf")
    }

    static var tinyPath: String { folder.appendingPathComponent("tiny_llama.gguf").path }

    static func data(_ name: String) throws -> Data {
        try Data(contentsOf: folder.appendingPathComponent(name))
    }

    static func json(_ name: String) throws -> Any {
        try JSONSerialization.jsonObject(with: data(name))
    }

    /// A fresh path in the temporary folder; the caller removes it.
    static func temporaryPath(_ suffix: String = ".gguf") -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("qs-gguf-\(UUID().uuidString)\(suffix)").path
    }

    /// The float32 values of a little-endian file.
    static func floats(_ data: Data) -> [Float] {
        data.withUnsafeBytes { raw in
            (0 ..< raw.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }
}

/// The summary make_gguf_fixtures.py records for a tensor: samples and float64 sums.
struct TensorSummary {
    var ggufName: String
    var hfName: String?
    var hfShape: [Int]
    var first: [Float]
    var stridedIndices: [Int]
    var strided: [Float]
    var sum: Double
    var weightedSum: Double

    init(_ object: Any) {
        let entry = object as! [String: Any]
        ggufName = entry["gguf_name"] as! String
        hfName = entry["hf_name"] as? String
        hfShape = (entry["hf_shape"] as! [NSNumber]).map(\.intValue)
        first = (entry["first"] as! [NSNumber]).map { Float($0.doubleValue) }
        stridedIndices = (entry["strided_indices"] as! [NSNumber]).map(\.intValue)
        strided = (entry["strided"] as! [NSNumber]).map { Float($0.doubleValue) }
        sum = (entry["sum"] as! NSNumber).doubleValue
        weightedSum = (entry["weighted_sum"] as! NSNumber).doubleValue
    }

    /// Nil when `values` match; otherwise what differs.
    func mismatch(_ values: [Float]) -> String? {
        if Array(values.prefix(first.count)) != first { return "\(ggufName): first values differ" }
        for (index, expected) in zip(stridedIndices, strided) where values[index] != expected {
            return "\(ggufName): value \(index) is \(values[index]), expected \(expected)"
        }
        var total = 0.0
        var weighted = 0.0
        for (index, value) in values.enumerated() {
            total += Double(value)
            weighted += Double(value) * Double(index % 251 + 1)
        }
        let scale = values.reduce(0.0) { $0 + abs(Double($1)) } * 251
        if abs(total - sum) > 1e-9 * scale + 1e-12 { return "\(ggufName): sum \(total), expected \(sum)" }
        if abs(weighted - weightedSum) > 1e-9 * scale + 1e-12 {
            return "\(ggufName): weighted sum \(weighted), expected \(weightedSum)"
        }
        return nil
    }
}

/// Writes a GGUF of a Hugging Face llama-family checkpoint (its tensors as F32, its
/// configuration as `llama.*` metadata), with metadata entries replaced or removed, for tests of
/// what loading checks. Not a converter: rows of q/k are not permuted.
enum TinyGGUF {
    enum Value {
        case u32(UInt32), i32(Int32), f32(Float), string(String)
    }

    /// The metadata a GGUF of `config` carries.
    static func metadata(_ config: ModelConfig) -> [(String, Value)] {
        [
            ("general.architecture", .string("llama")), ("general.name", .string("tiny")),
            ("llama.context_length", .u32(UInt32(config.maxPositionEmbeddings))),
            ("llama.embedding_length", .u32(UInt32(config.hiddenSize))),
            ("llama.block_count", .u32(UInt32(config.numHiddenLayers))),
            ("llama.feed_forward_length", .u32(UInt32(config.intermediateSize))),
            ("llama.attention.head_count", .u32(UInt32(config.numAttentionHeads))),
            ("llama.attention.head_count_kv", .u32(UInt32(config.numKeyValueHeads))),
            ("llama.attention.key_length", .u32(UInt32(config.headDim))),
            ("llama.attention.layer_norm_rms_epsilon", .f32(Float(config.normEps))),
            ("llama.rope.freq_base", .f32(Float(config.ropeTheta))),
            ("llama.vocab_size", .u32(UInt32(config.vocabSize))),
        ]
    }

    /// Writes the checkpoint at `path` with `changes` applied to its metadata (nil removes the key).
    static func write(_ checkpoint: Checkpoint, to path: String, changes: [String: Value?] = [:]) throws {
        var entries = metadata(checkpoint.config!)
        for (key, value) in changes {
            entries.removeAll { $0.0 == key }
            if let value { entries.append((key, value)) }
        }
        let naming = LlamaFamily.ggufNaming("llama")!
        var b = GGUFReaderErrorTests.Builder()
        b.header(tensors: UInt64(checkpoint.tensors.count), metadata: UInt64(entries.count))
        for (key, value) in entries {
            b.string(key)
            switch value {
            case .u32(let x): b.u32(4); b.u32(x)
            case .i32(let x): b.u32(5); b.u32(UInt32(bitPattern: x))
            case .f32(let x): b.u32(6); b.u32(x.bitPattern)
            case .string(let text): b.u32(8); b.string(text)
            }
        }
        var offset: UInt64 = 0
        var data: [UInt8] = []
        for tensor in checkpoint.tensors {
            let name = naming.gguf(fromHuggingFace: tensor.name) ?? tensor.name
            b.tensor(name, dims: tensor.shape.reversed().map(UInt64.init), type: 0, offset: offset)
            let values = try Dequantize.floats(tensor)
            var bytes = values.withUnsafeBytes { Array($0) }
            while bytes.count % 32 != 0 { bytes.append(0) }
            data += bytes
            offset += UInt64(bytes.count)
        }
        b.pad(extra: 0)
        b.bytes += data
        try Data(b.bytes).write(to: URL(fileURLWithPath: path))
    }
}
