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
}
