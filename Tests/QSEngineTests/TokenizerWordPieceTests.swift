import Foundation
import Testing
@testable import QSEngine

/// WordPiece (BERT normalizer and pre-tokenizer, [CLS]/[SEP] template) against ids from
/// Hugging Face `tokenizers`, on a small vocabulary trained by the fixture script.
@Suite struct TokenizerWordPieceTests {
    @Test func idsMatchTokenizers() throws {
        let tokenizer = try TokenizerFixtures.tinyWordPiece()
        let cases = try TokenizerFixtures.tinyCases("wordpiece")
        #expect(cases.count >= 40)
        for entry in cases {
            #expect(tokenizer.encode(entry.text, addSpecialTokens: false) == entry.ids, "\(entry.text.debugDescription)")
            #expect(tokenizer.encode(entry.text, addSpecialTokens: true) == (entry.ids_special ?? entry.ids))
        }
    }

    @Test func decodeMatchesTokenizers() throws {
        let tokenizer = try TokenizerFixtures.tinyWordPiece()
        for entry in try TokenizerFixtures.tinyCases("wordpiece") {
            #expect(tokenizer.decode(entry.ids, skipSpecialTokens: false) == (entry.decoded ?? entry.text), "\(entry.text.debugDescription)")
            #expect(tokenizer.decode(entry.ids_special ?? entry.ids, skipSpecialTokens: true) == (entry.decoded_skip ?? entry.text))
        }
    }

    @Test func clsAndSepWrapTheSequence() throws {
        let tokenizer = try TokenizerFixtures.tinyWordPiece()
        let cls = try #require(tokenizer.clsID)
        let sep = try #require(tokenizer.sepID)
        #expect(tokenizer.unkID == tokenizer.id(of: "[UNK]"))
        #expect(tokenizer.padID == tokenizer.id(of: "[PAD]"))
        #expect(tokenizer.encode("", addSpecialTokens: true) == [cls, sep])
        let ids = tokenizer.encode("the market", addSpecialTokens: true)
        #expect(ids.first == cls && ids.last == sep)
    }

    @Test func overlongWordIsUnknown() throws {
        let tokenizer = try TokenizerFixtures.tinyWordPiece()
        let unk = try #require(tokenizer.unkID)
        #expect(tokenizer.encode(String(repeating: "a", count: 101), addSpecialTokens: false) == [unk])
        #expect(tokenizer.encode(String(repeating: "a", count: 100), addSpecialTokens: false).allSatisfy { $0 != unk })
    }

    @Test func writtenTokenizerJSONGivesTheSameIds() throws {
        let tokenizer = try TokenizerFixtures.tinyWordPiece()
        let reloaded = try Tokenizer(tokenizerJSON: tokenizer.tokenizerJSON(), path: "written.json")
        #expect(reloaded.vocabSize == tokenizer.vocabSize)
        #expect(reloaded.specialTokens == tokenizer.specialTokens)
        for entry in try TokenizerFixtures.tinyCases("wordpiece") {
            #expect(reloaded.encode(entry.text, addSpecialTokens: true) == (entry.ids_special ?? entry.ids))
        }
    }

    @Test func builtFromGGUFPhantomSpaceVocabulary() throws {
        let json = try JSONSerialization.jsonObject(with: TokenizerFixtures.data("tiny_wordpiece.json")) as! [String: Any]
        let vocab = (json["model"] as! [String: Any])["vocab"] as! [String: Int]
        var tokens = [String](repeating: "", count: vocab.count)
        for (token, id) in vocab { tokens[id] = token }
        let control: Set = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        let types = tokens.map { control.contains($0) ? 3 : 1 }
        let phantom = tokens.map { token in
            control.contains(token) ? token : token.hasPrefix("##") ? String(token.dropFirst(2)) : "\u{2581}" + token
        }
        let tokenizer = try Tokenizer(
            ggufTokens: phantom, tokenTypes: types, merges: nil, model: "bert", pre: nil, bosId: nil, eosId: nil,
            unkId: tokens.firstIndex(of: "[UNK]"), padId: tokens.firstIndex(of: "[PAD]"), addBOS: nil, path: "bert.gguf")
        #expect(tokenizer.clsID == tokens.firstIndex(of: "[CLS]") && tokenizer.sepID == tokens.firstIndex(of: "[SEP]"))
        for entry in try TokenizerFixtures.tinyCases("wordpiece") {
            #expect(tokenizer.encode(entry.text, addSpecialTokens: false) == entry.ids, "\(entry.text.debugDescription)")
            #expect(tokenizer.encode(entry.text, addSpecialTokens: true) == (entry.ids_special ?? entry.ids))
            #expect(tokenizer.decode(entry.ids, skipSpecialTokens: false) == (entry.decoded ?? entry.text))
        }
    }

    @Test func specialTokensFromConfig() throws {
        var tokenizer = try TokenizerFixtures.tinyWordPiece()
        let config = Data(#"{"cls_token": "[SEP]", "mask_token": "[MASK]", "pad_token": {"content": "[MASK]"}}"#.utf8)
        try tokenizer.applySpecialTokens(configJSON: config, path: "tokenizer_config.json")
        #expect(tokenizer.clsID == tokenizer.id(of: "[SEP]"))
        #expect(tokenizer.padID == tokenizer.id(of: "[MASK]"))
        let bad = Data(#"{"bos_token": "<nope>"}"#.utf8)
        #expect(throws: EngineError.self) { try tokenizer.applySpecialTokens(configJSON: bad, path: "tokenizer_config.json") }
    }
}
