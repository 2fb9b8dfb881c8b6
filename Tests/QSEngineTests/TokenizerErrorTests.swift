import Foundation
import Testing
@testable import QSEngine

/// Tokenizer files of a kind qs does not support are errors that name the file and the part.
@Suite struct TokenizerErrorTests {
    private static let minimalBPE = #"{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}"#

    private func loadError(_ json: String) -> EngineError? {
        do {
            _ = try Tokenizer(tokenizerJSON: Data(json.utf8), path: "bad/tokenizer.json")
            return nil
        } catch {
            return error
        }
    }

    @Test func minimalTokenizerLoads() throws {
        let tokenizer = try Tokenizer(tokenizerJSON: Data(#"{"model": \#(Self.minimalBPE)}"#.utf8), path: "t.json")
        #expect(tokenizer.encode("abba", addSpecialTokens: true) == [2, 1, 0])
        #expect(tokenizer.decode([2, 1, 0], skipSpecialTokens: true) == "ab b a")
    }

    @Test(arguments: [
        (#"{"model": {"type": "Unigram", "vocab": []}}"#, "model", "Unigram"),
        (#"{"normalizer": {"type": "Precompiled"}, "model": \#(minimalBPE)}"#, "normalizer", "Precompiled"),
        (#"{"pre_tokenizer": {"type": "Metaspace"}, "model": \#(minimalBPE)}"#, "pre_tokenizer", "Metaspace"),
        (#"{"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Punctuation"}]}, "model": \#(minimalBPE)}"#,
         "pre_tokenizer.pretokenizers[0]", "Punctuation"),
        (#"{"decoder": {"type": "Metaspace"}, "model": \#(minimalBPE)}"#, "decoder", "Metaspace"),
        (#"{"post_processor": {"type": "Nope"}, "model": \#(minimalBPE)}"#, "post_processor", "Nope"),
        (#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}"#, "model.merges", "'b'"),
        (#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "byte_fallback": true}}"#, "model", "byte_fallback"),
        (#"{"model": {"type": "WordPiece", "vocab": {"a": 0}}}"#, "model.unk_token", "[UNK]"),
        (#"{"model": {"type": "BPE", "vocab": {"a": "zero"}, "merges": []}}"#, "model.vocab.a", "integer"),
        (#"["not", "an", "object"]"#, "", "object"),
        (#"{"model": "#, "", "JSON"),
    ])
    func unsupportedPartsAreNamed(json: String, subject: String, mention: String) throws {
        let error = try #require(loadError(json))
        #expect(error.path == "bad/tokenizer.json")
        #expect((error.subject ?? "") == subject)
        #expect(error.description.contains(mention), "\(error)")
    }

    @Test func ggufOfUnsupportedKindIsNamed() {
        #expect(throws: EngineError(path: "m.gguf", subject: "tokenizer.ggml.model", "unsupported tokenizer model 'llama' (supported: gpt2, bert)")) {
            try Tokenizer(ggufTokens: ["a"], tokenTypes: nil, merges: nil, model: "llama", pre: nil,
                          bosId: nil, eosId: nil, unkId: nil, padId: nil, addBOS: nil, path: "m.gguf")
        }
        do {
            _ = try Tokenizer(ggufTokens: ["a", "b", "ab"], tokenTypes: [1, 1, 1], merges: ["a b"], model: "gpt2", pre: "deepseek-llm",
                              bosId: nil, eosId: nil, unkId: nil, padId: nil, addBOS: nil, path: "m.gguf")
            Issue.record("expected an error")
        } catch {
            #expect(error.subject == "tokenizer.ggml.pre")
            #expect(error.message.contains("deepseek-llm"))
        }
        #expect(throws: EngineError.self) {
            try Tokenizer(ggufTokens: ["a", "b"], tokenTypes: [1], merges: [], model: "gpt2", pre: nil,
                          bosId: nil, eosId: nil, unkId: nil, padId: nil, addBOS: nil, path: "m.gguf")
        }
        #expect(throws: EngineError.self) {
            try Tokenizer(ggufTokens: ["a", "b"], tokenTypes: nil, merges: ["a c"], model: "gpt2", pre: nil,
                          bosId: 5, eosId: nil, unkId: nil, padId: nil, addBOS: nil, path: "m.gguf")
        }
    }
}
