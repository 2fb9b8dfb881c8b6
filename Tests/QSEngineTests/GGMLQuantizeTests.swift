import Foundation
import Testing
@testable import QSEngine

/// qs's GGUF block quantizers against the `gguf` package's reference quantizer (fixture from
/// scripts/reference/make_ggml_quant_fixtures.py): every block bit-identical, on normal,
/// outlier, uniform, tiny and real weights and on blocks of zeros, constants and exact ties.
@Suite struct GGMLQuantizeTests {
    struct Fixture: Decodable {
        struct Input: Decodable { var name: String; var f32: String }
        struct Case: Decodable { var input: String; var type: String; var blocks: String }
        var inputs: [Input]
        var cases: [Case]
    }

    static let fixture: Fixture = {
        let url = Bundle.module.url(forResource: "Fixtures/export/ggml_quants", withExtension: "json")!
        return try! JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }()

    @Test func blocksAreBitIdenticalToTheReference() throws {
        let inputs = Dictionary(uniqueKeysWithValues: Self.fixture.inputs.map { input -> (String, [Float]) in
            let bytes = Data(base64Encoded: input.f32)!
            return (input.name, bytes.withUnsafeBytes { raw in (0 ..< bytes.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) } })
        })
        #expect(Self.fixture.cases.count >= 25)
        for fixtureCase in Self.fixture.cases {
            let type = try #require(DType(rawValue: fixtureCase.type.lowercased()))
            let values = try #require(inputs[fixtureCase.input])
            let expected = [UInt8](Data(base64Encoded: fixtureCase.blocks)!)
            let blocks = GGMLQuantize.quantize(values, as: type)
            #expect(blocks.count == expected.count)
            let differing = (0 ..< blocks.count / type.bytesPerBlock).filter { block in
                let range = block * type.bytesPerBlock ..< (block + 1) * type.bytesPerBlock
                return blocks[range] != expected[range]
            }
            #expect(differing.isEmpty, "\(fixtureCase.type) on \(fixtureCase.input): \(differing.count) blocks differ, first \(differing.first ?? -1)")
        }
    }

    /// A block of SmolLM2 (layer 0's down projection, row 287, columns 1312–1343) where x·id is
    /// exactly −4.5: rounded apart, −4.5 + 8.5 = 4 (llama.cpp's code); fused into one rounding it
    /// is 3.9999998 and truncates to 3. scripts/bench/quantize found it.
    @Test func q4_0RoundsTheProductAndTheOffsetApart() {
        var block = [Float](repeating: 0, count: 32)
        block[0] = -0.494140625
        block[1] = -0.2779541015625
        let d = block[0] / -8
        #expect(block[1] * (1 / d) == -4.5)
        let bytes = GGMLQuantize.quantize(block, as: .q4_0)
        #expect(bytes[3] & 0x0F == 4)
    }

    /// Values that are not finite quantize without a trap: a NaN's code is 0 (what llama.cpp's
    /// `(int8_t)` of NaN gives on x86), the finite values keep their grid; an infinity makes the
    /// block's scale infinite and every code 0, for every 32-value type.
    @Test func nonFiniteValuesQuantizeWithoutATrap() {
        var block = (0 ..< 32).map { Float($0 - 16) / 16 }
        block[5] = .nan
        let q8 = GGMLQuantize.quantize(block, as: .q8_0)
        #expect(Int8(bitPattern: q8[2 + 5]) == 0)
        #expect(Int8(bitPattern: q8[2 + 0]) == -127 && Int8(bitPattern: q8[2 + 31]) == 119)
        block[7] = .infinity
        for type in GGMLQuantize.types {
            let bytes = GGMLQuantize.quantize(block, as: type)
            #expect(bytes.count == type.bytesPerBlock, "\(type)")
        }
        #expect(GGMLQuantize.quantize(block, as: .q8_0)[2...].allSatisfy { $0 == 0 })
    }

    /// The super-block types against llama.cpp's own quantizer (llama_model_quantize through
    /// llama-cpp-python, no importance matrix: scripts/reference/make_kquant_fixtures.py) on the
    /// weights of a tiny llama with special rows (zeros, outliers, constants, tiny values, wide
    /// sub-block ranges).
    @Test func superBlocksAgainstLlamaCpp() throws {
        let url = Bundle.module.url(forResource: "Fixtures/export/kquants", withExtension: "json")!
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        let inputs = Dictionary(uniqueKeysWithValues: fixture.inputs.map { input -> (String, [Float]) in
            let bytes = Data(base64Encoded: input.f32)!
            return (input.name, bytes.withUnsafeBytes { raw in (0 ..< bytes.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) } })
        })
        var compared = 0
        var identical = 0
        var report: [String] = []
        for fixtureCase in fixture.cases {
            guard let type = DType(rawValue: fixtureCase.type.replacingOccurrences(of: "_K", with: "_K").lowercased().replacingOccurrences(of: "_k", with: "_K")),
                GGMLQuantize.superBlockTypes.contains(type) || GGMLQuantize.types.contains(type)
            else { continue }
            let values = try #require(inputs[fixtureCase.input])
            let expected = [UInt8](Data(base64Encoded: fixtureCase.blocks)!)
            let blocks = GGMLQuantize.quantize(values, as: type)
            #expect(blocks.count == expected.count)
            let count = blocks.count / type.bytesPerBlock
            let same = (0 ..< count).filter { block in
                let range = block * type.bytesPerBlock ..< (block + 1) * type.bytesPerBlock
                return blocks[range] == expected[range]
            }.count
            compared += count
            identical += same
            if same != count { report.append("\(fixtureCase.type) \(fixtureCase.input): \(count - same) of \(count) differ") }
        }
        #expect(compared >= 1000)
        #expect(identical == compared, "\(report.joined(separator: "; "))")
    }
}
