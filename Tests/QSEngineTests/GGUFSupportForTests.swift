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
