import Foundation
@testable import QSEngine

/// The tokenizer fixtures made by scripts/reference/make_tokenizer_fixtures.py.
enum TokenizerFixtures {
    /// One text with the ids `tokenizers` gives; omitted fields equal `ids` or `text`.
    struct Case: Decodable {
        var text: String
        var ids: [Int]
        var ids_special: [Int]?
        var decoded: String?
        var decoded_skip: String?
    }

    struct InvalidUTF8Case: Decodable {
        var ids: [Int]
        var decoded: String
    }

    struct TinyBPE: Decodable {
        var tokens: [String]
        var token_types: [Int]
        var merges: [String]
        var model: String
    }

    struct WholeFile: Decodable {
        var count: Int
        var fnv1a: String
        var first: [Int]
    }

    struct RealTokenizer: Decodable {
        var cases: [Case]
        var whole_files: [String: WholeFile]
    }

    struct RealExpectations: Decodable {
        var smollm2: RealTokenizer
        var minilm: RealTokenizer
    }

    static func url(_ name: String) -> URL {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("tokenizers/\(name)")
    }

    static func data(_ name: String) throws -> Data { try Data(contentsOf: url(name)) }

    static func decode<T: Decodable>(_ type: T.Type, _ name: String) throws -> T {
        try JSONDecoder().decode(type, from: data(name))
    }

    static func tinyCases(_ key: String) throws -> [Case] {
        try entry(key, [Case].self)
    }

    static func invalidUTF8Cases() throws -> [InvalidUTF8Case] {
        try entry("bpe_invalid_utf8", [InvalidUTF8Case].self)
    }

    /// One member of expected_tiny.json, decoded alone (its members have different shapes).
    private static func entry<T: Decodable>(_ key: String, _ type: T.Type) throws -> T {
        let object = try JSONSerialization.jsonObject(with: data("expected_tiny.json")) as! [String: Any]
        return try JSONDecoder().decode(type, from: JSONSerialization.data(withJSONObject: object[key]!))
    }

    static func tinyBPE(pre: String, addBOS: Bool = false) throws -> Tokenizer {
        let fixture = try decode(TinyBPE.self, "tiny_bpe_gguf.json")
        return try Tokenizer(
            ggufTokens: fixture.tokens, tokenTypes: fixture.token_types, merges: fixture.merges, model: fixture.model,
            pre: pre, bosId: addBOS ? 1 : 0, eosId: 0, unkId: nil, padId: nil, addBOS: addBOS, path: "tiny_bpe_gguf.json")
    }

    static func tinyWordPiece() throws -> Tokenizer {
        try Tokenizer(tokenizerJSON: data("tiny_wordpiece.json"), path: "tiny_wordpiece.json")
    }

    /// FNV-1a 64 of the ids as comma-separated decimal text (as the fixture script computes it).
    static func fnv1a(_ ids: [Int]) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in ids.map(String.init).joined(separator: ",").utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01B3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
