import Foundation
import Testing
@testable import QSEngine

/// Byte-level BPE against ids from Hugging Face `tokenizers`, on a small vocabulary built from
/// GGUF-style arrays (tokens, token types, merges) with each supported `tokenizer.ggml.pre`.
@Suite struct TokenizerBPETests {
    @Test(arguments: ["gpt-2", "smollm", "qwen2", "llama-bpe"])
    func idsMatchTokenizers(pre: String) throws {
        let tokenizer = try TokenizerFixtures.tinyBPE(pre: pre)
        let cases = try TokenizerFixtures.tinyCases("bpe_\(pre)")
        #expect(cases.count >= 40)
        for entry in cases {
            #expect(tokenizer.encode(entry.text, addSpecialTokens: false) == entry.ids, "\(pre): \(entry.text.debugDescription)")
            #expect(tokenizer.encode(entry.text, addSpecialTokens: true) == (entry.ids_special ?? entry.ids))
        }
    }

    @Test(arguments: ["gpt-2", "smollm", "qwen2", "llama-bpe"])
    func decodeMatchesTokenizers(pre: String) throws {
        let tokenizer = try TokenizerFixtures.tinyBPE(pre: pre)
        for entry in try TokenizerFixtures.tinyCases("bpe_\(pre)") {
            #expect(tokenizer.decode(entry.ids, skipSpecialTokens: false) == (entry.decoded ?? entry.text))
            #expect(tokenizer.decode(entry.ids_special ?? entry.ids, skipSpecialTokens: true) == (entry.decoded_skip ?? entry.text))
        }
    }

    @Test func decodeRoundTripsText() throws {
        let tokenizer = try TokenizerFixtures.tinyBPE(pre: "smollm")
        let excerpts = try JSONDecoder().decode([String: String].self, from: TokenizerFixtures.data("excerpts.json"))
        let texts = excerpts.values.sorted() + ["", "\u{0}\u{1}\u{7F}", "e\u{301} \u{1F468}\u{200D}\u{1F469}", "\r\n\t  x  "]
        for text in texts {
            let decoded = tokenizer.decode(tokenizer.encode(text, addSpecialTokens: false), skipSpecialTokens: false)
            #expect(Array(decoded.unicodeScalars) == Array(text.unicodeScalars))
        }
    }

    @Test func leadingBOSWhenGGUFAsksForIt() throws {
        let tokenizer = try TokenizerFixtures.tinyBPE(pre: "smollm", addBOS: true)
        #expect(tokenizer.bosID == 1)
        #expect(tokenizer.addsSpecialTokens)
        for entry in try TokenizerFixtures.tinyCases("bpe_smollm_bos1") {
            #expect(tokenizer.encode(entry.text, addSpecialTokens: true) == (entry.ids_special ?? entry.ids))
            #expect(tokenizer.encode(entry.text, addSpecialTokens: false) == entry.ids)
        }
    }

    @Test func invalidUTF8DecodesToReplacementCharacters() throws {
        let tokenizer = try TokenizerFixtures.tinyBPE(pre: "smollm")
        let cases = try TokenizerFixtures.invalidUTF8Cases()
        #expect(!cases.isEmpty)
        for entry in cases {
            let decoded = tokenizer.decode(entry.ids, skipSpecialTokens: false)
            #expect(decoded == entry.decoded)
            #expect(decoded.unicodeScalars.contains("\u{FFFD}"))
        }
        #expect(tokenizer.decode([-1, 1_000_000], skipSpecialTokens: false) == "")
    }

    @Test func specialTokensInsideTextAreMatchedWhole() throws {
        let tokenizer = try TokenizerFixtures.tinyBPE(pre: "smollm")
        let start = try #require(tokenizer.id(of: "<|im_start|>"))
        let end = try #require(tokenizer.id(of: "<|im_end|>"))
        let ids = tokenizer.encode("a<|im_start|>b<|im_end|>", addSpecialTokens: false)
        #expect(ids.contains(start) && ids.contains(end))
        #expect(tokenizer.decode(ids, skipSpecialTokens: true) == "ab")
    }

    @Test(arguments: ["gpt-2", "smollm", "qwen2", "llama-bpe"])
    func writtenTokenizerJSONGivesTheSameIds(pre: String) throws {
        let tokenizer = try TokenizerFixtures.tinyBPE(pre: pre, addBOS: pre == "llama-bpe")
        let reloaded = try Tokenizer(tokenizerJSON: tokenizer.tokenizerJSON(), path: "written.json")
        #expect(reloaded.vocabSize == tokenizer.vocabSize)
        #expect(reloaded.addedTokens == tokenizer.addedTokens)
        for entry in try TokenizerFixtures.tinyCases("bpe_\(pre)") {
            #expect(reloaded.encode(entry.text, addSpecialTokens: true) == tokenizer.encode(entry.text, addSpecialTokens: true))
        }
        let written = try #require(try JSONSerialization.jsonObject(with: tokenizer.tokenizerJSON()) as? [String: Any])
        let model = try #require(written["model"] as? [String: Any])
        #expect(model["type"] as? String == "BPE")
        #expect((model["merges"] as? [Any])?.count == (try TokenizerFixtures.decode(TokenizerFixtures.TinyBPE.self, "tiny_bpe_gguf.json")).merges.count)
    }

    @Test func vocabularyAndSpecialIds() throws {
        let fixture = try TokenizerFixtures.decode(TokenizerFixtures.TinyBPE.self, "tiny_bpe_gguf.json")
        let tokenizer = try TokenizerFixtures.tinyBPE(pre: "gpt-2")
        #expect(tokenizer.vocabSize == fixture.tokens.count)
        #expect(tokenizer.eosID == 0)
        #expect(tokenizer.token(of: 0) == "<|endoftext|>")
        #expect(tokenizer.addedTokens.map(\.content) == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        #expect(!tokenizer.addsSpecialTokens)
    }
}

/// Other normalizers and pre-tokenizers (NFD/NFKC/NFKD/Lowercase, Whitespace, WhitespaceSplit,
/// Digits, Split with a regex or a literal in every behavior, ByteLevel with a prefix space)
/// swapped into the small BPE, against `tokenizers`.
@Suite struct TokenizerPipelineTests {
    struct Pipeline: Decodable {
        var cases: [TokenizerFixtures.Case]
    }

    @Test func pipelinesMatchTokenizers() throws {
        let fixture = try JSONSerialization.jsonObject(with: TokenizerFixtures.data("expected_tiny.json")) as! [String: Any]
        let pipelines = try #require(fixture["pipelines"] as? [[String: Any]])
        #expect(pipelines.count == 19)
        let base = try TokenizerFixtures.tinyBPE(pre: "gpt-2")
        for pipeline in pipelines {
            var json = try #require(try JSONSerialization.jsonObject(with: base.tokenizerJSON()) as? [String: Any])
            json["normalizer"] = pipeline["normalizer"]
            json["pre_tokenizer"] = pipeline["pre_tokenizer"]
            let tokenizer = try Tokenizer(tokenizerJSON: JSONSerialization.data(withJSONObject: json), path: "pipeline.json")
            let cases = try JSONDecoder().decode(Pipeline.self, from: JSONSerialization.data(withJSONObject: pipeline)).cases
            for entry in cases {
                #expect(tokenizer.encode(entry.text, addSpecialTokens: false) == entry.ids,
                        "\(String(describing: pipeline["pre_tokenizer"])) \(entry.text.debugDescription)")
            }
            let reloaded = try Tokenizer(tokenizerJSON: tokenizer.tokenizerJSON(), path: "written.json")
            #expect(cases.allSatisfy { reloaded.encode($0.text, addSpecialTokens: false) == $0.ids })
        }
    }
}
