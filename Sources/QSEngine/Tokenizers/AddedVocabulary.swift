/// A token added on top of the model's vocabulary (special or not), found in text before
/// the text is split into words.
package struct AddedToken: Sendable, Equatable {
    package var content: String
    package var id: Int
    package var special: Bool
    /// Only matched when not inside a word.
    package var singleWord = false
    /// Takes the whitespace to its left (lstrip) or right (rstrip) with it.
    package var lstrip = false
    package var rstrip = false
    /// Matched in the normalized text rather than the raw text.
    package var normalized: Bool

    package init(content: String, id: Int, special: Bool, singleWord: Bool = false, lstrip: Bool = false, rstrip: Bool = false, normalized: Bool? = nil) {
        self.content = content
        self.id = id
        self.special = special
        self.singleWord = singleWord
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.normalized = normalized ?? !special
    }
}

/// A stretch of text between added tokens, or an added token's id.
enum TextSegment {
    case text([Unicode.Scalar])
    case token(Int)
}

/// Leftmost-longest matching of a set of added tokens (tokenizers uses Aho-Corasick with
/// the same match kind).
struct AddedTokenMatcher: Sendable {
    private var byFirstScalar: [UInt32: [(scalars: [Unicode.Scalar], token: AddedToken)]] = [:]

    init(_ tokens: [AddedToken]) {
        for token in tokens {
            let scalars = Array(token.content.unicodeScalars)
            guard let first = scalars.first else { continue }
            byFirstScalar[first.value, default: []].append((scalars, token))
        }
        for key in byFirstScalar.keys { byFirstScalar[key]!.sort { $0.scalars.count > $1.scalars.count } }
    }

    var isEmpty: Bool { byFirstScalar.isEmpty }

    func split(_ text: [Unicode.Scalar]) -> [TextSegment] {
        guard !isEmpty else { return [.text(text)] }
        var segments: [TextSegment] = []
        var textStart = 0
        var index = 0
        while index < text.count {
            guard let candidates = byFirstScalar[text[index].value],
                let match = candidates.first(where: { index + $0.scalars.count <= text.count && text[index..<(index + $0.scalars.count)].elementsEqual($0.scalars) })
            else {
                index += 1
                continue
            }
            var start = index
            var end = index + match.scalars.count
            let token = match.token
            if token.singleWord {
                let before = start > 0 && Self.isWordScalar(text[start - 1])
                let after = end < text.count && Self.isWordScalar(text[end])
                if before || after {
                    index = end
                    continue
                }
            }
            if token.lstrip {
                while start > textStart, text[start - 1].isWhitespaceScalar { start -= 1 }
            }
            if token.rstrip {
                while end < text.count, text[end].isWhitespaceScalar { end += 1 }
            }
            if start > textStart { segments.append(.text(Array(text[textStart..<start]))) }
            segments.append(.token(token.id))
            textStart = end
            index = end
        }
        if textStart < text.count { segments.append(.text(Array(text[textStart...]))) }
        return segments
    }

    private static func isWordScalar(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "_" || scalar.properties.isAlphabetic || scalar.isNumericScalar
    }
}
