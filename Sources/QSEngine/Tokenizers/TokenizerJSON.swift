import Foundation

/// Reading and writing the components of a Hugging Face tokenizer.json.
enum TokenizerJSON {
    static func normalizer(_ json: TokenizerJSONObject) throws(EngineError) -> Normalizer {
        let type = try json.string("type")
        switch type {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "BertNormalizer":
            return .bert(
                cleanText: try json.bool("clean_text", default: true),
                handleChineseChars: try json.bool("handle_chinese_chars", default: true),
                stripAccents: try json.optionalBool("strip_accents"),
                lowercase: try json.bool("lowercase", default: true))
        case "Sequence":
            var steps: [Normalizer] = []
            for step in try json.objects("normalizers") { steps.append(try normalizer(step)) }
            return .sequence(steps)
        default:
            throw json.unsupported("normalizer", type)
        }
    }

    static func json(_ normalizer: Normalizer) -> OrderedJSON {
        switch normalizer {
        case .nfc: return .object([("type", .string("NFC"))])
        case .nfd: return .object([("type", .string("NFD"))])
        case .nfkc: return .object([("type", .string("NFKC"))])
        case .nfkd: return .object([("type", .string("NFKD"))])
        case .lowercase: return .object([("type", .string("Lowercase"))])
        case .bert(let cleanText, let handleChineseChars, let stripAccents, let lowercase):
            return .object([
                ("type", .string("BertNormalizer")), ("clean_text", .bool(cleanText)),
                ("handle_chinese_chars", .bool(handleChineseChars)), ("strip_accents", .optional(stripAccents)),
                ("lowercase", .bool(lowercase)),
            ])
        case .sequence(let steps):
            return .object([("type", .string("Sequence")), ("normalizers", .array(steps.map(json)))])
        }
    }

    static func preTokenizer(_ json: TokenizerJSONObject) throws(EngineError) -> PreTokenizer {
        let type = try json.string("type")
        switch type {
        case "ByteLevel":
            return .byteLevel(
                addPrefixSpace: try json.bool("add_prefix_space", default: true),
                trimOffsets: try json.bool("trim_offsets", default: true),
                useRegex: try json.bool("use_regex", default: true))
        case "Split":
            let patternObject = try json.object("pattern")
            let pattern: SplitPattern
            if let literal = try patternObject.optionalString("String") {
                pattern = .literal(Array(literal.unicodeScalars))
            } else if let source = try patternObject.optionalString("Regex") {
                do {
                    pattern = try SplitPattern.regex(source)
                } catch {
                    throw patternObject.error("Regex", "cannot compile the regular expression: \(error)")
                }
            } else {
                throw json.error("pattern", "expected {\"String\": ...} or {\"Regex\": ...}")
            }
            let behaviorName = try json.string("behavior")
            guard let behavior = SplitBehavior(rawValue: behaviorName) else {
                throw json.unsupported("split behavior", behaviorName)
            }
            return .split(pattern: pattern, behavior: behavior, invert: try json.bool("invert", default: false))
        case "Digits": return .digits(individualDigits: try json.bool("individual_digits", default: false))
        case "BertPreTokenizer": return .bert
        case "Whitespace": return .whitespace
        case "WhitespaceSplit": return .whitespaceSplit
        case "Sequence":
            var steps: [PreTokenizer] = []
            for step in try json.objects("pretokenizers") { steps.append(try preTokenizer(step)) }
            return .sequence(steps)
        default:
            throw json.unsupported("pre-tokenizer", type)
        }
    }

    static func json(_ preTokenizer: PreTokenizer) -> OrderedJSON {
        switch preTokenizer {
        case .byteLevel(let addPrefixSpace, let trimOffsets, let useRegex):
            return .object([
                ("type", .string("ByteLevel")), ("add_prefix_space", .bool(addPrefixSpace)),
                ("trim_offsets", .bool(trimOffsets)), ("use_regex", .bool(useRegex)),
            ])
        case .split(let pattern, let behavior, let invert):
            return .object([
                ("type", .string("Split")),
                ("pattern", .object([(pattern.isLiteral ? "String" : "Regex", .string(pattern.source))])),
                ("behavior", .string(behavior.rawValue)), ("invert", .bool(invert)),
            ])
        case .digits(let individualDigits):
            return .object([("type", .string("Digits")), ("individual_digits", .bool(individualDigits))])
        case .bert: return .object([("type", .string("BertPreTokenizer"))])
        case .whitespace: return .object([("type", .string("Whitespace"))])
        case .whitespaceSplit: return .object([("type", .string("WhitespaceSplit"))])
        case .sequence(let steps):
            return .object([("type", .string("Sequence")), ("pretokenizers", .array(steps.map(json)))])
        }
    }

    static func postProcessor(_ json: TokenizerJSONObject) throws(EngineError) -> PostProcessor {
        let type = try json.string("type")
        func pair(_ name: String) throws(EngineError) -> (String, Int) {
            guard let items = json.members[name] as? [Any], items.count == 2, let text = items[0] as? String,
                let id = TokenizerJSONObject.integer(items[1])
            else { throw json.error(name, "expected [token, id]") }
            return (text, id)
        }
        switch type {
        case "ByteLevel":
            return .byteLevel(
                addPrefixSpace: try json.bool("add_prefix_space", default: true),
                trimOffsets: try json.bool("trim_offsets", default: true),
                useRegex: try json.bool("use_regex", default: true))
        case "BertProcessing":
            return .bert(cls: try pair("cls"), sep: try pair("sep"))
        case "RobertaProcessing":
            return .roberta(
                cls: try pair("cls"), sep: try pair("sep"), trimOffsets: try json.bool("trim_offsets", default: true),
                addPrefixSpace: try json.bool("add_prefix_space", default: true))
        case "TemplateProcessing":
            func pieces(_ name: String) throws(EngineError) -> [PostProcessor.TemplatePiece] {
                var result: [PostProcessor.TemplatePiece] = []
                for item in try json.objects(name) {
                    if let special = try item.optionalObject("SpecialToken") {
                        result.append(.special(name: try special.string("id"), typeID: try special.int("type_id", default: 0)))
                    } else if let sequence = try item.optionalObject("Sequence") {
                        result.append(.sequence(name: try sequence.string("id"), typeID: try sequence.int("type_id", default: 0)))
                    } else {
                        throw item.unsupported("template item", item.members.keys.sorted().joined(separator: ","))
                    }
                }
                return result
            }
            var specialTokens: [PostProcessor.TemplateSpecialToken] = []
            let specials = try json.object("special_tokens")
            for name in specials.members.keys.sorted() {
                let entry = try specials.object(name)
                let ids = try entry.array("ids").map { (value: Any) throws(EngineError) -> Int in
                    guard let id = TokenizerJSONObject.integer(value) else { throw entry.error("ids", "expected integers") }
                    return id
                }
                let tokens = try entry.array("tokens").compactMap { $0 as? String }
                specialTokens.append(.init(name: name, ids: ids, tokens: tokens))
            }
            return .template(single: try pieces("single"), pair: try pieces("pair"), specialTokens: specialTokens)
        case "Sequence":
            var steps: [PostProcessor] = []
            for step in try json.objects("processors") { steps.append(try postProcessor(step)) }
            return .sequence(steps)
        default:
            throw json.unsupported("post-processor", type)
        }
    }

    static func json(_ processor: PostProcessor) -> OrderedJSON {
        func pair(_ value: (String, Int)) -> OrderedJSON { .array([.string(value.0), .int(value.1)]) }
        func pieces(_ items: [PostProcessor.TemplatePiece]) -> OrderedJSON {
            .array(items.map { item in
                switch item {
                case .special(let name, let typeID):
                    return .object([("SpecialToken", .object([("id", .string(name)), ("type_id", .int(typeID))]))])
                case .sequence(let name, let typeID):
                    return .object([("Sequence", .object([("id", .string(name)), ("type_id", .int(typeID))]))])
                }
            })
        }
        switch processor {
        case .byteLevel(let addPrefixSpace, let trimOffsets, let useRegex):
            return .object([
                ("type", .string("ByteLevel")), ("add_prefix_space", .bool(addPrefixSpace)),
                ("trim_offsets", .bool(trimOffsets)), ("use_regex", .bool(useRegex)),
            ])
        case .bert(let cls, let sep):
            return .object([("type", .string("BertProcessing")), ("sep", pair(sep)), ("cls", pair(cls))])
        case .roberta(let cls, let sep, let trimOffsets, let addPrefixSpace):
            return .object([
                ("type", .string("RobertaProcessing")), ("sep", pair(sep)), ("cls", pair(cls)),
                ("trim_offsets", .bool(trimOffsets)), ("add_prefix_space", .bool(addPrefixSpace)),
            ])
        case .template(let single, let pair, let specialTokens):
            return .object([
                ("type", .string("TemplateProcessing")), ("single", pieces(single)), ("pair", pieces(pair)),
                ("special_tokens", .object(specialTokens.map { token in
                    (token.name, .object([
                        ("id", .string(token.name)), ("ids", .array(token.ids.map { .int($0) })),
                        ("tokens", .array(token.tokens.map { .string($0) })),
                    ]))
                })),
            ])
        case .sequence(let steps):
            return .object([("type", .string("Sequence")), ("processors", .array(steps.map(json)))])
        }
    }

    static func decoder(_ json: TokenizerJSONObject) throws(EngineError) -> TokenDecoder {
        let type = try json.string("type")
        switch type {
        case "ByteLevel":
            return .byteLevel(
                addPrefixSpace: try json.bool("add_prefix_space", default: true),
                trimOffsets: try json.bool("trim_offsets", default: true),
                useRegex: try json.bool("use_regex", default: true))
        case "WordPiece":
            return .wordPiece(prefix: try json.optionalString("prefix") ?? "##", cleanup: try json.bool("cleanup", default: true))
        case "Sequence":
            var steps: [TokenDecoder] = []
            for step in try json.objects("decoders") { steps.append(try decoder(step)) }
            return .sequence(steps)
        default:
            throw json.unsupported("decoder", type)
        }
    }

    static func json(_ decoder: TokenDecoder) -> OrderedJSON {
        switch decoder {
        case .byteLevel(let addPrefixSpace, let trimOffsets, let useRegex):
            return .object([
                ("type", .string("ByteLevel")), ("add_prefix_space", .bool(addPrefixSpace)),
                ("trim_offsets", .bool(trimOffsets)), ("use_regex", .bool(useRegex)),
            ])
        case .wordPiece(let prefix, let cleanup):
            return .object([("type", .string("WordPiece")), ("prefix", .string(prefix)), ("cleanup", .bool(cleanup))])
        case .sequence(let steps):
            return .object([("type", .string("Sequence")), ("decoders", .array(steps.map(json)))])
        }
    }

    static func vocabulary(_ json: TokenizerJSONObject) throws(EngineError) -> TokenVocabulary {
        let entries = try json.object("vocab")
        var pairs: [(String, Int)] = []
        pairs.reserveCapacity(entries.members.count)
        for (text, value) in entries.members {
            guard let id = TokenizerJSONObject.integer(value) else { throw entries.error(text, "expected an integer id") }
            pairs.append((text, id))
        }
        do {
            return try TokenVocabulary(pairs)
        } catch {
            switch error {
            case .duplicate(let text): throw entries.error(text, "token appears twice")
            case .negativeID(let text): throw entries.error(text, "negative id")
            case .idTooLarge(let text, let id): throw entries.error(text, "id \(id) is larger than any vocabulary (at most \(ModelConfig.maxSize))")
            }
        }
    }

    static func model(_ json: TokenizerJSONObject) throws(EngineError) -> TokenizerModel {
        let type = try json.optionalString("type") ?? (json.has("merges") ? "BPE" : "")
        switch type {
        case "BPE":
            let vocabulary = try vocabulary(json)
            var merges: [(String, String)] = []
            for (index, item) in try json.array("merges").enumerated() {
                if let text = item as? String {
                    let parts = text.split(separator: " ", omittingEmptySubsequences: false)
                    guard parts.count == 2 else { throw json.error("merges[\(index)]", "expected two tokens separated by one space") }
                    merges.append((String(parts[0]), String(parts[1])))
                } else if let pair = item as? [Any], pair.count == 2, let left = pair[0] as? String, let right = pair[1] as? String {
                    merges.append((left, right))
                } else {
                    throw json.error("merges[\(index)]", "expected \"a b\" or [\"a\", \"b\"]")
                }
            }
            if let dropout = json.members["dropout"], let value = dropout as? NSNumber, value.doubleValue > 0 {
                throw json.unsupported("BPE dropout", "\(value)")
            }
            if try json.bool("byte_fallback", default: false) { throw json.unsupported("BPE option", "byte_fallback") }
            for option in ["continuing_subword_prefix", "end_of_word_suffix"] {
                if let value = try json.optionalString(option), !value.isEmpty { throw json.unsupported("BPE \(option)", value) }
            }
            let unknownToken = try json.optionalString("unk_token")
            let fuseUnknown = try json.bool("fuse_unk", default: false)
            let ignoreMerges = try json.bool("ignore_merges", default: false)
            do {
                return .bpe(try BPEModel(
                    vocabulary: vocabulary, merges: merges, unknownToken: unknownToken, fuseUnknown: fuseUnknown,
                    ignoreMerges: ignoreMerges))
            } catch {
                switch error {
                case .unknownMergePart(let token): throw json.error("merges", "merge part '\(token)' is not in the vocabulary")
                }
            }
        case "WordPiece":
            let model = WordPieceModel(
                vocabulary: try vocabulary(json), unknownToken: try json.optionalString("unk_token") ?? "[UNK]",
                continuingSubwordPrefix: try json.optionalString("continuing_subword_prefix") ?? "##",
                maxInputCharsPerWord: try json.int("max_input_chars_per_word", default: 100))
            guard model.vocabulary[model.unknownToken] != nil else {
                throw json.error("unk_token", "'\(model.unknownToken)' is not in the vocabulary")
            }
            return .wordPiece(model)
        default:
            throw json.unsupported("model type", type)
        }
    }

    static func json(_ model: TokenizerModel) -> OrderedJSON {
        switch model {
        case .bpe(let bpe):
            let spaced = bpe.merges.contains { $0.0.contains(" ") || $0.1.contains(" ") }
            return .object([
                ("type", .string("BPE")), ("dropout", .null), ("unk_token", .optional(bpe.unknownToken)),
                ("continuing_subword_prefix", .null), ("end_of_word_suffix", .null),
                ("fuse_unk", .bool(bpe.fuseUnknown)), ("byte_fallback", .bool(false)),
                ("ignore_merges", .bool(bpe.ignoreMerges)),
                ("vocab", .object(bpe.vocabulary.ordered.map { ($0.0, .int($0.1)) })),
                ("merges", .array(bpe.merges.map { spaced ? .array([.string($0.0), .string($0.1)]) : .string("\($0.0) \($0.1)") })),
            ])
        case .wordPiece(let wordPiece):
            return .object([
                ("type", .string("WordPiece")), ("unk_token", .string(wordPiece.unknownToken)),
                ("continuing_subword_prefix", .string(wordPiece.continuingSubwordPrefix)),
                ("max_input_chars_per_word", .int(wordPiece.maxInputCharsPerWord)),
                ("vocab", .object(wordPiece.vocabulary.ordered.map { ($0.0, .int($0.1)) })),
            ])
        }
    }

    static func addedToken(_ json: TokenizerJSONObject) throws(EngineError) -> AddedToken {
        AddedToken(
            content: try json.string("content"), id: try json.int("id"), special: try json.bool("special", default: false),
            singleWord: try json.bool("single_word", default: false), lstrip: try json.bool("lstrip", default: false),
            rstrip: try json.bool("rstrip", default: false), normalized: try json.optionalBool("normalized"))
    }

    static func json(_ token: AddedToken) -> OrderedJSON {
        .object([
            ("id", .int(token.id)), ("content", .string(token.content)), ("single_word", .bool(token.singleWord)),
            ("lstrip", .bool(token.lstrip)), ("rstrip", .bool(token.rstrip)), ("normalized", .bool(token.normalized)),
            ("special", .bool(token.special)),
        ])
    }
}
