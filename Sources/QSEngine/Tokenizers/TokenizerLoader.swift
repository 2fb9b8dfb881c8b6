import Foundation

extension Tokenizer {
    /// The tokenizer that travels with a checkpoint: tokenizer.json (with the special tokens of
    /// tokenizer_config.json) in a Hugging Face folder, or the `tokenizer.ggml.*` metadata of a
    /// GGUF. Nil when the checkpoint has none.
    package static func load(for checkpoint: Checkpoint) throws -> Tokenizer? {
        if let gguf = checkpoint.gguf { return try fromGGUF(gguf) }
        let folder = checkpoint.folder
        let path = (folder as NSString).appendingPathComponent("tokenizer.json")
        guard FileAccess.kind(path) != .missing else { return nil }
        let data = try FileAccess.contents(path, expected: "tokenizer.json")
        var tokenizer = try Tokenizer(tokenizerJSON: data, path: path)
        for name in ["special_tokens_map.json", "tokenizer_config.json"] {
            let configPath = (folder as NSString).appendingPathComponent(name)
            if FileAccess.kind(configPath) != .missing {
                try tokenizer.applySpecialTokens(configJSON: try FileAccess.contents(configPath, expected: name), path: configPath)
            }
        }
        return tokenizer
    }

    /// The tokenizer described by a GGUF's `tokenizer.ggml.*` metadata; nil when it has none.
    package static func fromGGUF(_ gguf: GGUFFile) throws -> Tokenizer? {
        guard let tokens = gguf["tokenizer.ggml.tokens"]?.strings else { return nil }
        guard let model = gguf["tokenizer.ggml.model"]?.string else {
            throw EngineError(path: gguf.path, subject: "tokenizer.ggml.model", "is missing: cannot tell the tokenizer's kind")
        }
        return try Tokenizer(
            ggufTokens: tokens, tokenTypes: gguf["tokenizer.ggml.token_type"]?.array?.compactMap(\.int),
            merges: gguf["tokenizer.ggml.merges"]?.strings, model: model, pre: gguf["tokenizer.ggml.pre"]?.string,
            bosId: gguf["tokenizer.ggml.bos_token_id"]?.int, eosId: gguf["tokenizer.ggml.eos_token_id"]?.int,
            unkId: gguf["tokenizer.ggml.unknown_token_id"]?.int, padId: gguf["tokenizer.ggml.padding_token_id"]?.int,
            addBOS: gguf["tokenizer.ggml.add_bos_token"]?.bool, path: gguf.path)
    }

    /// A tokenizer_config.json that transformers reads beside a written tokenizer.json.
    package func tokenizerConfigJSON(modelMaxLength: Int) -> Data {
        var object: [String: Any] = [
            "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": modelMaxLength,
            "clean_up_tokenization_spaces": false,
        ]
        let named: [(String, Int?)] = [
            ("bos_token", bosID), ("eos_token", eosID), ("unk_token", unkID), ("pad_token", padID),
            ("cls_token", clsID), ("sep_token", sepID),
        ]
        for (key, id) in named {
            if let id, let text = token(of: id) { object[key] = text }
        }
        object["add_bos_token"] = addsSpecialTokens && bosID != nil
        return (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data()
    }
}
