import Foundation

/// The model at the heart of a tokenizer: turns one pre-tokenized word into ids.
enum TokenizerModel: Sendable {
    case bpe(BPEModel)
    case wordPiece(WordPieceModel)

    var vocabulary: TokenVocabulary {
        switch self {
        case .bpe(let model): return model.vocabulary
        case .wordPiece(let model): return model.vocabulary
        }
    }

    func tokenize(_ word: [Unicode.Scalar], into output: inout [Int]) {
        switch self {
        case .bpe(let model): model.tokenize(word, into: &output)
        case .wordPiece(let model): model.tokenize(word, into: &output)
        }
    }
}

/// The ids of the tokens with a special role, where the tokenizer has them.
package struct SpecialTokenIDs: Sendable, Equatable {
    package var bos: Int?
    package var eos: Int?
    package var pad: Int?
    package var unk: Int?
    package var cls: Int?
    package var sep: Int?

    package init(bos: Int? = nil, eos: Int? = nil, pad: Int? = nil, unk: Int? = nil, cls: Int? = nil, sep: Int? = nil) {
        self.bos = bos
        self.eos = eos
        self.pad = pad
        self.unk = unk
        self.cls = cls
        self.sep = sep
    }
}

/// A text tokenizer that gives the same ids as Hugging Face `tokenizers` for the pipelines it
/// supports: byte-level BPE (GPT-2, SmolLM2, Qwen2, llama-3) and WordPiece (BERT). Built from
/// a tokenizer.json or from GGUF tokenizer metadata; writes itself back as tokenizer.json.
/// Truncation and padding settings in a tokenizer.json are ignored.
package struct Tokenizer: Sendable {
    var normalizer: Normalizer?
    var preTokenizer: PreTokenizer?
    var model: TokenizerModel
    var postProcessor: PostProcessor?
    var decoder: TokenDecoder?
    /// Tokens added on top of the model's vocabulary, special or not.
    package private(set) var addedTokens: [AddedToken]
    package var specialTokens: SpecialTokenIDs
    /// The file the tokenizer came from, for error messages.
    package let path: String
    private var rawMatcher: AddedTokenMatcher
    private var normalizedMatcher: AddedTokenMatcher
    private var addedByID: [Int: AddedToken]
    private var specialContents: Set<TokenText>

    init(normalizer: Normalizer?, preTokenizer: PreTokenizer?, model: TokenizerModel, addedTokens: [AddedToken],
         postProcessor: PostProcessor?, decoder: TokenDecoder?, specialTokens: SpecialTokenIDs? = nil, path: String) {
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.model = model
        self.postProcessor = postProcessor
        self.decoder = decoder
        self.addedTokens = addedTokens
        self.path = path
        rawMatcher = AddedTokenMatcher(addedTokens.filter { !$0.normalized })
        normalizedMatcher = AddedTokenMatcher(addedTokens.filter { $0.normalized })
        addedByID = Dictionary(addedTokens.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        specialContents = Set(addedTokens.filter(\.special).map { TokenText($0.content) })
        self.specialTokens = SpecialTokenIDs()
        self.specialTokens = specialTokens ?? guessedSpecialTokens()
    }

    /// Reads a Hugging Face tokenizer.json; `path` names the file in errors.
    package init(tokenizerJSON data: Data, path: String) throws(EngineError) {
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw EngineError(path: path, "not valid JSON: \(error.localizedDescription)")
        }
        let root = try TokenizerJSONObject(parsed, path: path, location: "")
        var addedTokens: [AddedToken] = []
        if root.has("added_tokens") {
            for entry in try root.objects("added_tokens") { addedTokens.append(try TokenizerJSON.addedToken(entry)) }
        }
        self.init(
            normalizer: try root.optionalObject("normalizer").map(TokenizerJSON.normalizer),
            preTokenizer: try root.optionalObject("pre_tokenizer").map(TokenizerJSON.preTokenizer),
            model: try TokenizerJSON.model(try root.object("model")),
            addedTokens: addedTokens,
            postProcessor: try root.optionalObject("post_processor").map(TokenizerJSON.postProcessor),
            decoder: try root.optionalObject("decoder").map(TokenizerJSON.decoder),
            path: path)
    }

    /// The ids of `text`; with `addSpecialTokens`, wrapped as the post-processor says
    /// (`[CLS] … [SEP]` for BERT, a leading BOS where the model wants one).
    package func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(text.utf8.count / 3 + 4)
        for segment in rawMatcher.split(Array(text.unicodeScalars)) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let raw):
                let normalized = normalizer?.apply(raw) ?? raw
                for inner in normalizedMatcher.split(normalized) {
                    switch inner {
                    case .token(let id):
                        ids.append(id)
                    case .text(let text):
                        let words = preTokenizer?.apply([text]) ?? [text]
                        for word in words where !word.isEmpty { model.tokenize(word, into: &ids) }
                    }
                }
            }
        }
        if addSpecialTokens, let postProcessor { ids = postProcessor.process(ids) }
        return ids
    }

    /// The text of `ids`; ids that are no token are dropped, and bytes that are not valid
    /// UTF-8 become U+FFFD.
    package func decode(_ ids: [Int], skipSpecialTokens: Bool = true) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            if let added = addedByID[id] {
                if skipSpecialTokens && added.special { continue }
                tokens.append(added.content)
            } else if let text = model.vocabulary.token(id) {
                if skipSpecialTokens, specialContents.contains(TokenText(text)) { continue }
                tokens.append(text)
            }
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decode(tokens).joined()
    }

    /// One more than the largest id, counting added tokens.
    package var vocabSize: Int {
        max(model.vocabulary.upperBound, (addedTokens.map(\.id).max() ?? -1) + 1)
    }

    /// The id of a token's text, in the added tokens or the model's vocabulary.
    package func id(of token: String) -> Int? {
        addedTokens.first { $0.content == token }?.id ?? model.vocabulary[token]
    }

    /// The text of a token id.
    package func token(of id: Int) -> String? { addedByID[id]?.content ?? model.vocabulary.token(id) }

    package var bosID: Int? { specialTokens.bos }
    package var eosID: Int? { specialTokens.eos }
    package var padID: Int? { specialTokens.pad }
    package var unkID: Int? { specialTokens.unk }
    package var clsID: Int? { specialTokens.cls }
    package var sepID: Int? { specialTokens.sep }

    /// Whether encoding with special tokens wraps text in tokens (BOS, [CLS] … [SEP]).
    package var addsSpecialTokens: Bool {
        guard let postProcessor else { return false }
        let surrounding = postProcessor.surroundingTokens
        return !surrounding.before.isEmpty || !surrounding.after.isEmpty
    }

    /// The tokenizer as a tokenizer.json that `tokenizers` loads and that gives the same ids.
    package func tokenizerJSON() -> Data {
        OrderedJSON.object([
            ("version", .string("1.0")),
            ("truncation", .null),
            ("padding", .null),
            ("added_tokens", .array(addedTokens.map(TokenizerJSON.json))),
            ("normalizer", normalizer.map(TokenizerJSON.json) ?? .null),
            ("pre_tokenizer", preTokenizer.map(TokenizerJSON.json) ?? .null),
            ("post_processor", postProcessor.map(TokenizerJSON.json) ?? .null),
            ("decoder", decoder.map(TokenizerJSON.json) ?? .null),
            ("model", TokenizerJSON.json(model)),
        ]).serialized()
    }

    /// Sets the special tokens named in a tokenizer_config.json or special_tokens_map.json
    /// (`bos_token`, `eos_token`, `pad_token`, `unk_token`, `cls_token`, `sep_token`, as
    /// strings or `{"content": ...}` objects), which a tokenizer.json does not record.
    package mutating func applySpecialTokens(configJSON data: Data, path: String) throws(EngineError) {
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw EngineError(path: path, "not valid JSON: \(error.localizedDescription)")
        }
        let config = try TokenizerJSONObject(parsed, path: path, location: "")
        func lookup(_ key: String) throws(EngineError) -> Int?? {
            guard config.has(key) else { return .none }
            let value = config.members[key]
            let text = (value as? String) ?? ((value as? [String: Any])?["content"] as? String)
            guard let text else { throw config.error(key, "expected a token string or {\"content\": ...}") }
            guard let id = id(of: text) else { throw config.error(key, "'\(text)' is not a token of this tokenizer") }
            return .some(id)
        }
        if let id = try lookup("bos_token") { specialTokens.bos = id }
        if let id = try lookup("eos_token") { specialTokens.eos = id }
        if let id = try lookup("pad_token") { specialTokens.pad = id }
        if let id = try lookup("unk_token") { specialTokens.unk = id }
        if let id = try lookup("cls_token") { specialTokens.cls = id }
        if let id = try lookup("sep_token") { specialTokens.sep = id }
    }

    /// What a tokenizer.json alone tells: the model's unknown token, the tokens the
    /// post-processor puts around a sequence, and the usual names of special tokens.
    private func guessedSpecialTokens() -> SpecialTokenIDs {
        var result = SpecialTokenIDs()
        let specials = addedTokens.filter(\.special)
        func named(_ names: [String]) -> Int? {
            for name in names { if let token = specials.first(where: { $0.content == name }) { return token.id } }
            return nil
        }
        switch model {
        case .bpe(let bpe): result.unk = bpe.unknownID
        case .wordPiece(let wordPiece): result.unk = wordPiece.vocabulary[wordPiece.unknownToken]
        }
        result.unk = result.unk ?? named(["<unk>", "[UNK]"])
        result.pad = named(["[PAD]", "<pad>", "<|pad|>", "<|padding|>"])
        result.cls = named(["[CLS]"])
        result.sep = named(["[SEP]"])
        let surrounding = postProcessor?.surroundingTokens ?? (before: [], after: [])
        if result.cls == nil, let first = surrounding.before.first, case .some(.bert) = postProcessor { result.cls = id(of: first) }
        if result.sep == nil, let last = surrounding.after.last, case .some(.bert) = postProcessor { result.sep = id(of: last) }
        if result.cls == nil {
            result.bos = surrounding.before.first.flatMap { id(of: $0) }
                ?? named(["<s>", "<|begin_of_text|>", "<|startoftext|>", "<bos>"])
            result.eos = surrounding.after.last.flatMap { id(of: $0) }
                ?? named(["</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>"])
        }
        return result
    }
}
