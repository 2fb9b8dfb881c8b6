extension Tokenizer {
    /// GGUF token types (llama.cpp's `llama_token_type`).
    enum GGUFTokenType: Int {
        case undefined = 0, normal, unknown, control, userDefined, unused, byte
    }

    /// Builds the tokenizer that GGUF tokenizer metadata describes, the way llama.cpp reads
    /// it: `model` is `tokenizer.ggml.model` ("gpt2": byte-level BPE; "bert": WordPiece) and
    /// `pre` is `tokenizer.ggml.pre`, which chooses the pre-tokenizer ("gpt-2"/"default",
    /// "smollm"/"starcoder"/"refact": digits apart then GPT-2's, "qwen2", "llama-bpe").
    /// Control tokens become special added tokens, user-defined tokens plain added tokens.
    /// `path` names the file in errors.
    package init(
        ggufTokens tokens: [String], tokenTypes: [Int]?, merges: [String]?, model: String, pre: String?,
        bosId: Int?, eosId: Int?, unkId: Int?, padId: Int?, addBOS: Bool?, path: String = "GGUF"
    ) throws(EngineError) {
        if let tokenTypes, tokenTypes.count != tokens.count {
            throw EngineError(path: path, subject: "tokenizer.ggml.token_type", "has \(tokenTypes.count) entries for \(tokens.count) tokens")
        }
        for (key, id) in [("bos_token_id", bosId), ("eos_token_id", eosId), ("unknown_token_id", unkId), ("padding_token_id", padId)] {
            if let id, !(0..<tokens.count).contains(id) {
                throw EngineError(path: path, subject: "tokenizer.ggml.\(key)", "id \(id) is outside the vocabulary of \(tokens.count) tokens")
            }
        }
        if addBOS == true, bosId == nil {
            throw EngineError(path: path, subject: "tokenizer.ggml.add_bos_token", "is set but there is no tokenizer.ggml.bos_token_id")
        }
        var tokens = tokens
        if model == "bert" { tokens = Self.wordPieceSpelling(tokens, tokenTypes: tokenTypes) }
        let vocabulary: TokenVocabulary
        do {
            vocabulary = try TokenVocabulary(tokens.enumerated().map { ($1, $0) })
        } catch {
            switch error {
            case .duplicate(let text): throw EngineError(path: path, subject: "tokenizer.ggml.tokens", "token '\(text)' appears twice")
            case .negativeID, .idTooLarge: throw EngineError(path: path, subject: "tokenizer.ggml.tokens", "an id outside 0 ... \(ModelConfig.maxSize)")
            }
        }
        var addedTokens: [AddedToken] = []
        for (id, text) in tokens.enumerated() {
            switch tokenTypes.map({ GGUFTokenType(rawValue: $0[id]) }) {
            case .some(.control): addedTokens.append(AddedToken(content: text, id: id, special: true, normalized: false))
            case .some(.userDefined): addedTokens.append(AddedToken(content: text, id: id, special: false, normalized: false))
            default: break
            }
        }
        var special = SpecialTokenIDs(bos: bosId, eos: eosId, pad: padId, unk: unkId)

        switch model {
        case "gpt2":
            guard let merges else {
                throw EngineError(path: path, subject: "tokenizer.ggml.merges", "a gpt2 (BPE) tokenizer needs merges")
            }
            var pairs: [(String, String)] = []
            pairs.reserveCapacity(merges.count)
            for (index, merge) in merges.enumerated() {
                let parts = merge.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw EngineError(path: path, subject: "tokenizer.ggml.merges[\(index)]", "expected two tokens separated by one space, got '\(merge)'")
                }
                pairs.append((String(parts[0]), String(parts[1])))
            }
            let byteLevel = PreTokenizer.byteLevel(addPrefixSpace: false, trimOffsets: true, useRegex: true)
            let splitOnly = PreTokenizer.byteLevel(addPrefixSpace: false, trimOffsets: true, useRegex: false)
            var normalizer: Normalizer?
            var preTokenizer: PreTokenizer
            var ignoreMerges = false
            switch pre ?? "default" {
            case "default", "gpt-2", "gpt2":
                preTokenizer = byteLevel
            case "smollm", "starcoder", "refact":
                preTokenizer = .sequence([.digits(individualDigits: true), byteLevel])
            case "qwen2":
                normalizer = .nfc
                preTokenizer = .sequence([.split(pattern: .llama3(maxDigits: 1), behavior: .isolated, invert: false), splitOnly])
            case "llama-bpe", "llama3", "llama-v3":
                preTokenizer = .sequence([.split(pattern: .llama3(maxDigits: 3), behavior: .isolated, invert: false), splitOnly])
                ignoreMerges = true
            case let other:
                throw EngineError(path: path, subject: "tokenizer.ggml.pre", "unsupported pre-tokenizer '\(other)' (supported: default, gpt-2, smollm, starcoder, refact, qwen2, llama-bpe)")
            }
            let bpe: BPEModel
            do {
                bpe = try BPEModel(vocabulary: vocabulary, merges: pairs, unknownToken: nil, fuseUnknown: false, ignoreMerges: ignoreMerges)
            } catch {
                switch error {
                case .unknownMergePart(let token):
                    throw EngineError(path: path, subject: "tokenizer.ggml.merges", "merge part '\(token)' is not a token")
                }
            }
            var postProcessor = PostProcessor.byteLevel(addPrefixSpace: true, trimOffsets: false, useRegex: true)
            if addBOS == true, let bosId {
                let name = tokens[bosId]
                postProcessor = .template(
                    single: [.special(name: name, typeID: 0), .sequence(name: "A", typeID: 0)],
                    pair: [.special(name: name, typeID: 0), .sequence(name: "A", typeID: 0), .special(name: name, typeID: 1), .sequence(name: "B", typeID: 1)],
                    specialTokens: [.init(name: name, ids: [bosId], tokens: [name])])
            }
            self.init(
                normalizer: normalizer, preTokenizer: preTokenizer, model: .bpe(bpe), addedTokens: addedTokens,
                postProcessor: postProcessor, decoder: .byteLevel(addPrefixSpace: true, trimOffsets: true, useRegex: true),
                specialTokens: special, path: path)
        case "bert":
            let unknownToken = unkId.map { tokens[$0] } ?? "[UNK]"
            guard vocabulary[unknownToken] != nil else {
                throw EngineError(path: path, subject: "tokenizer.ggml.unknown_token_id", "a WordPiece tokenizer needs an unknown token")
            }
            let clsID = vocabulary["[CLS]"] ?? bosId
            let sepID = vocabulary["[SEP]"] ?? eosId
            guard let clsID, let sepID else {
                throw EngineError(path: path, subject: "tokenizer.ggml.tokens", "a bert tokenizer needs [CLS] and [SEP] tokens (or bos and eos ids)")
            }
            special.cls = clsID
            special.sep = sepID
            let cls = tokens[clsID], sep = tokens[sepID]
            let postProcessor = PostProcessor.template(
                single: [.special(name: cls, typeID: 0), .sequence(name: "A", typeID: 0), .special(name: sep, typeID: 0)],
                pair: [.special(name: cls, typeID: 0), .sequence(name: "A", typeID: 0), .special(name: sep, typeID: 0),
                       .sequence(name: "B", typeID: 1), .special(name: sep, typeID: 1)],
                specialTokens: [.init(name: cls, ids: [clsID], tokens: [cls]), .init(name: sep, ids: [sepID], tokens: [sep])])
            let wordPiece = WordPieceModel(vocabulary: vocabulary, unknownToken: unknownToken, continuingSubwordPrefix: "##", maxInputCharsPerWord: 100)
            self.init(
                normalizer: .bert(cleanText: true, handleChineseChars: true, stripAccents: nil, lowercase: true),
                preTokenizer: .bert, model: .wordPiece(wordPiece), addedTokens: addedTokens,
                postProcessor: postProcessor, decoder: .wordPiece(prefix: "##", cleanup: true),
                specialTokens: special, path: path)
        default:
            throw EngineError(path: path, subject: "tokenizer.ggml.model", "unsupported tokenizer model '\(model)' (supported: gpt2, bert)")
        }
    }

    /// llama.cpp's converter writes a WordPiece vocabulary in "phantom space" spelling: a word
    /// start gains a leading U+2581, a continuation loses its `##`, control tokens (or, in
    /// older files, `[...]` tokens) stay as they are. This undoes it, when the vocabulary is
    /// spelled that way.
    static func wordPieceSpelling(_ tokens: [String], tokenTypes: [Int]?) -> [String] {
        guard tokens.contains(where: { $0.hasPrefix("\u{2581}") }) else { return tokens }
        return tokens.enumerated().map { id, token in
            if tokenTypes?[id] == GGUFTokenType.control.rawValue { return token }
            if token.hasPrefix("\u{2581}") { return String(token.unicodeScalars.dropFirst()) }
            if token.hasPrefix("[") && token.hasSuffix("]") { return token }
            return "##" + token
        }
    }
}
