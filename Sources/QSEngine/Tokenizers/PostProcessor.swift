/// A tokenizer.json post-processor: what is added around a sequence's ids when special
/// tokens are asked for.
indirect enum PostProcessor: Sendable {
    /// Offsets only; adds nothing.
    case byteLevel(addPrefixSpace: Bool, trimOffsets: Bool, useRegex: Bool)
    /// `[CLS] A [SEP]` (the pair form is kept for writing back).
    case bert(cls: (String, Int), sep: (String, Int))
    case roberta(cls: (String, Int), sep: (String, Int), trimOffsets: Bool, addPrefixSpace: Bool)
    case template(single: [TemplatePiece], pair: [TemplatePiece], specialTokens: [TemplateSpecialToken])
    case sequence([PostProcessor])

    /// One item of a template: a special token by name, or sequence A or B.
    enum TemplatePiece: Sendable {
        case special(name: String, typeID: Int)
        case sequence(name: String, typeID: Int)
    }

    /// A named special token of a template, which may stand for several ids.
    struct TemplateSpecialToken: Sendable {
        var name: String
        var ids: [Int]
        var tokens: [String]
    }

    func process(_ ids: [Int]) -> [Int] {
        switch self {
        case .byteLevel: return ids
        case .bert(let cls, let sep), .roberta(let cls, let sep, _, _): return [cls.1] + ids + [sep.1]
        case .sequence(let steps): return steps.reduce(ids) { $1.process($0) }
        case .template(let single, _, let specialTokens):
            var result: [Int] = []
            for piece in single {
                switch piece {
                case .sequence: result += ids
                case .special(let name, _): result += specialTokens.first { $0.name == name }?.ids ?? []
                }
            }
            return result
        }
    }

    /// The special tokens placed before and after the sequence in the single template.
    var surroundingTokens: (before: [String], after: [String]) {
        switch self {
        case .byteLevel: return ([], [])
        case .bert(let cls, let sep), .roberta(let cls, let sep, _, _): return ([cls.0], [sep.0])
        case .sequence(let steps):
            return steps.reduce(([], [])) { ($0.0 + $1.surroundingTokens.before, $0.1 + $1.surroundingTokens.after) }
        case .template(let single, _, let specialTokens):
            var before: [String] = [], after: [String] = []
            var seen = false
            for piece in single {
                switch piece {
                case .sequence: seen = true
                case .special(let name, _):
                    let tokens = specialTokens.first { $0.name == name }?.tokens ?? []
                    if seen { after += tokens } else { before += tokens }
                }
            }
            return (before, after)
        }
    }
}

/// A tokenizer.json decoder: turns tokens back into text.
indirect enum TokenDecoder: Sendable {
    /// Each scalar back to its byte; the bytes read as UTF-8, invalid sequences replaced.
    case byteLevel(addPrefixSpace: Bool, trimOffsets: Bool, useRegex: Bool)
    /// Tokens joined with spaces, the continuation prefix joined without; with `cleanup`,
    /// spaces before punctuation and contractions removed.
    case wordPiece(prefix: String, cleanup: Bool)
    case sequence([TokenDecoder])

    func decode(_ tokens: [String]) -> [String] {
        switch self {
        case .sequence(let steps): return steps.reduce(tokens) { $1.decode($0) }
        case .byteLevel:
            var bytes: [UInt8] = []
            for token in tokens {
                let start = bytes.count
                var mapped = true
                for scalar in token.unicodeScalars {
                    guard let byte = ByteLevel.byte(for: scalar) else {
                        mapped = false
                        break
                    }
                    bytes.append(byte)
                }
                if !mapped {
                    bytes.removeSubrange(start...)
                    bytes.append(contentsOf: token.utf8)
                }
            }
            return [String(decoding: bytes, as: UTF8.self)]
        case .wordPiece(let prefix, let cleanup):
            return tokens.enumerated().map { index, token in
                var text = token
                if index != 0 {
                    if text.hasPrefix(prefix) && !prefix.isEmpty {
                        text = String(text.utf8.dropFirst(prefix.utf8.count))!
                    } else {
                        text = " " + text
                    }
                }
                return cleanup ? Self.cleanUp(text) : text
            }
        }
    }

    static func cleanUp(_ text: String) -> String {
        // Every pattern starts with a space and one of . ? ! , ' n d: most tokens have none.
        let bytes = text.utf8
        var index = bytes.startIndex
        var candidate = false
        while index != bytes.endIndex, !candidate {
            let next = bytes.index(after: index)
            if bytes[index] == 0x20, next != bytes.endIndex {
                switch bytes[next] {
                case UInt8(ascii: "."), UInt8(ascii: "?"), UInt8(ascii: "!"), UInt8(ascii: ","), UInt8(ascii: "'"),
                    UInt8(ascii: "n"), UInt8(ascii: "d"):
                    candidate = true
                default:
                    break
                }
            }
            index = next
        }
        guard candidate else { return text }
        var result = text
        for (from, to) in [
            (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
            (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
        ] {
            result = replacingLiterally(result, from, to)
        }
        return result
    }

    /// Every occurrence of `target` replaced, comparing UTF-8 bytes (no canonical equivalence).
    private static func replacingLiterally(_ text: String, _ target: String, _ replacement: String) -> String {
        let bytes = Array(text.utf8), needle = Array(target.utf8)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if index + needle.count <= bytes.count, bytes[index..<(index + needle.count)].elementsEqual(needle) {
                output.append(contentsOf: replacement.utf8)
                index += needle.count
            } else {
                output.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}
