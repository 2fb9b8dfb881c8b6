extension Tokenizer {
    /// The `tokenizer.ggml.*` metadata llama.cpp reads for this tokenizer, the inverse of
    /// `init(ggufTokens:...)`: byte-level BPE as model "gpt2" with the `pre` name of its
    /// pre-tokenizer, every id's token (ids past the vocabulary up to `vocabSize` as unused
    /// `[PAD<id>]` tokens, as convert_hf_to_gguf.py pads), token types (special added tokens are
    /// control, other added tokens user-defined), merges, and the special ids. Throws for a
    /// tokenizer llama.cpp has no name for.
    package func ggufMetadata(vocabSize: Int) throws -> [GGUFKeyValue] {
        guard case .bpe(let bpe) = model else {
            throw EngineError(path: path, "only byte-level BPE tokenizers can be written to GGUF for llama.cpp; this one is WordPiece")
        }
        let pre: String
        switch preTokenizer {
        case .some(.byteLevel(addPrefixSpace: false, trimOffsets: _, useRegex: true)): pre = "gpt-2"
        case .some(.sequence(let steps)):
            switch (steps.first, steps.dropFirst().first, steps.count) {
            case (.digits(individualDigits: true), .byteLevel(addPrefixSpace: false, trimOffsets: _, useRegex: true), 2): pre = "smollm"
            case (.split(pattern: .llama3(maxDigits: 1), behavior: .isolated, invert: false), .byteLevel(addPrefixSpace: false, trimOffsets: _, useRegex: false), 2): pre = "qwen2"
            case (.split(pattern: .llama3(maxDigits: 3), behavior: .isolated, invert: false), .byteLevel(addPrefixSpace: false, trimOffsets: _, useRegex: false), 2): pre = "llama-bpe"
            default:
                throw EngineError(path: path, "its pre-tokenizer has no llama.cpp name (qs writes gpt-2, smollm, qwen2 and llama-bpe)")
            }
        default:
            throw EngineError(path: path, "its pre-tokenizer has no llama.cpp name (qs writes gpt-2, smollm, qwen2 and llama-bpe)")
        }
        let count = max(vocabSize, self.vocabSize)
        var tokens: [GGUFValue] = []
        var types: [GGUFValue] = []
        tokens.reserveCapacity(count)
        types.reserveCapacity(count)
        let added = Dictionary(addedTokens.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for id in 0 ..< count {
            if let token = added[id] {
                tokens.append(.string(token.content))
                types.append(.int32(Int32((token.special ? GGUFTokenType.control : .userDefined).rawValue)))
            } else if let text = bpe.vocabulary.token(id) {
                tokens.append(.string(text))
                types.append(.int32(Int32(GGUFTokenType.normal.rawValue)))
            } else {
                tokens.append(.string("[PAD\(id)]"))
                types.append(.int32(Int32(GGUFTokenType.unused.rawValue)))
            }
        }
        var entries: [GGUFKeyValue] = [
            GGUFKeyValue(key: "tokenizer.ggml.model", value: .string("gpt2")),
            GGUFKeyValue(key: "tokenizer.ggml.pre", value: .string(pre)),
            GGUFKeyValue(key: "tokenizer.ggml.tokens", value: .array(.string, tokens)),
            GGUFKeyValue(key: "tokenizer.ggml.token_type", value: .array(.int32, types)),
            GGUFKeyValue(key: "tokenizer.ggml.merges", value: .array(.string, bpe.merges.map { .string($0.0 + " " + $0.1) })),
        ]
        let ids: [(String, Int?)] = [
            ("bos_token_id", specialTokens.bos), ("eos_token_id", specialTokens.eos),
            ("unknown_token_id", specialTokens.unk), ("padding_token_id", specialTokens.pad),
        ]
        for (key, id) in ids {
            if let id { entries.append(GGUFKeyValue(key: "tokenizer.ggml." + key, value: .uint32(UInt32(id)))) }
        }
        entries.append(GGUFKeyValue(key: "tokenizer.ggml.add_bos_token", value: .bool(addsSpecialTokens && specialTokens.bos != nil)))
        return entries
    }
}
