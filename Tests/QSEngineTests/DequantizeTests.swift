import Foundation
import QSTestSupport
import Testing
@testable import QSEngine

@Suite struct DequantizeTests {
    static let manifest: [(dtype: String, count: Int)] = {
        guard let entries = try? GGUFFixtures.json("dequant.json") as? [[String: Any]] else { return [] }
        return entries.map { ($0["dtype"] as! String, ($0["count"] as! NSNumber).intValue) }
    }()

    @Test func manifestCoversEveryGGUFType() {
        let names = Set(Self.manifest.map(\.dtype))
        #expect(names == ["f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K"])
    }

    @Test(arguments: manifest.map(\.dtype))
    func matchesGGUFPackageBitForBit(name: String) throws {
        let dtype = try #require(DType(rawValue: name))
        let input = try GGUFFixtures.data("dequant_\(name).in")
        let expected = GGUFFixtures.floats(try GGUFFixtures.data("dequant_\(name).out"))
        let count = expected.count
        #expect(dtype.byteCount(elements: count) == input.count)
        var output = [Float](repeating: .nan, count: count)
        input.withUnsafeBytes { raw in
            output.withUnsafeMutableBufferPointer { Dequantize.dequantize(dtype, from: raw, count: count, into: $0.baseAddress!) }
        }
        let differing = (0 ..< count).filter { output[$0].bitPattern != expected[$0].bitPattern }
        #expect(differing.isEmpty, "\(name): \(differing.count) values differ, first at \(differing.first ?? -1)")
    }

    /// A large input goes through the parallel split; it must give what one serial pass gives.
    @Test(arguments: [DType.q4_1, .q6_K, .f16])
    func parallelSplitMatchesSerial(dtype: DType) {
        let count = 300 * 1024
        let bytes = dtype.byteCount(elements: count)!
        var generator = TestGenerator(seed: 7)
        var raw = (0 ..< bytes).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        // Keep every fp16 field finite by clearing the top exponent bit of each high byte.
        for index in stride(from: 1, to: raw.count, by: 2) { raw[index] &= 0xBF }
        var parallel = [Float](repeating: 0, count: count)
        var serial = [Float](repeating: 0, count: count)
        raw.withUnsafeBytes { source in
            parallel.withUnsafeMutableBufferPointer {
                Dequantize.dequantize(dtype, from: source, count: count, into: $0.baseAddress!)
            }
            serial.withUnsafeMutableBufferPointer {
                Dequantize.dequantizeBlocks(dtype, from: source.baseAddress!, blocks: count / dtype.blockSize, into: $0.baseAddress!)
            }
        }
        #expect(parallel.map(\.bitPattern) == serial.map(\.bitPattern))
    }

    @Test func plainIntegerAndDoubleTypes() throws {
        func convert(_ dtype: DType, _ bytes: [UInt8]) -> [Float] {
            let count = bytes.count / dtype.bytesPerBlock
            var output = [Float](repeating: .nan, count: count)
            bytes.withUnsafeBytes { raw in
                output.withUnsafeMutableBufferPointer { Dequantize.dequantize(dtype, from: raw, count: count, into: $0.baseAddress!) }
            }
            return output
        }
        func littleEndian<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
            values.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
        }
        #expect(convert(.i8, [0xFF, 0x7F, 0x80]) == [-1, 127, -128])
        #expect(convert(.u8, [0xFF, 0x00]) == [255, 0])
        #expect(convert(.bool, [0, 1, 2]) == [0, 1, 1])
        #expect(convert(.i16, littleEndian([Int16(-300), 300])) == [-300, 300])
        #expect(convert(.i32, littleEndian([Int32(-70000), 16_777_217])) == [-70000, 16_777_216])
        #expect(convert(.i64, littleEndian([Int64(-5), 1 << 40])) == [-5, 1_099_511_627_776])
        #expect(convert(.f64, littleEndian([Double(0.1).bitPattern, Double(-2.5).bitPattern])) == [0.1, -2.5])
    }

    /// Rows stored permuted as convert_hf_to_gguf.py does come back in Hugging Face order.
    @Test func floatsUndoesRotaryPermutation() throws {
        let heads = 2
        let rows = 8
        let columns = 3
        // Hugging Face row r holds r in every column; GGUF row (head, i, half) holds HF row (head, half, i).
        var stored = [Float](repeating: 0, count: rows * columns)
        let dim = rows / heads
        for head in 0 ..< heads {
            for half in 0 ..< 2 {
                for i in 0 ..< dim / 2 {
                    let hfRow = head * dim + half * dim / 2 + i
                    let ggufRow = head * dim + 2 * i + half
                    for column in 0 ..< columns { stored[ggufRow * columns + column] = Float(hfRow) }
                }
            }
        }
        let path = GGUFFixtures.temporaryPath(".bin")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try stored.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: path)) }
        let file = try MappedFile(path: path)
        let tensor = StoredTensor(
            name: "q", dtype: .f32, shape: [rows, columns], file: file, offset: 0, byteCount: rows * columns * 4,
            rotaryPermutationHeads: heads)
        let values = try Dequantize.floats(tensor)
        #expect(values == (0 ..< rows).flatMap { row in [Float](repeating: Float(row), count: columns) })
        var plain = tensor
        plain.rotaryPermutationHeads = nil
        #expect(try Dequantize.floats(plain) == stored)
    }

    @Test func floatsRejectsBadSizes() throws {
        let path = GGUFFixtures.temporaryPath(".bin")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(count: 64).write(to: URL(fileURLWithPath: path))
        let file = try MappedFile(path: path)
        let cases = [
            StoredTensor(name: "w", dtype: .f32, shape: [4, 4], file: file, offset: 4, byteCount: 64),
            StoredTensor(name: "w", dtype: .f32, shape: [4, 4], file: file, offset: 0, byteCount: 60),
            StoredTensor(name: "w", dtype: .q8_0, shape: [1, 16], file: file, offset: 0, byteCount: 17),
            StoredTensor(name: "w", dtype: .f32, shape: [3, 4], file: file, offset: 0, byteCount: 48, rotaryPermutationHeads: 2),
            StoredTensor(name: "w", dtype: .f32, shape: [Int.max, 4], file: file, offset: 0, byteCount: 64),
        ]
        for tensor in cases {
            let error = #expect(throws: EngineError.self) { try Dequantize.floats(tensor) }
            #expect(error?.path == path)
            #expect(error?.subject == "w")
        }
    }
}

