/// A token's text as a dictionary key that compares UTF-8 bytes, not canonical equivalence
/// as `String` does: "é" and "e\u{301}" are different tokens.
struct TokenText: Hashable, Sendable {
    var text: String

    init(_ text: String) { self.text = text }

    init(_ scalars: some Sequence<Unicode.Scalar>) { text = String(scalars: scalars) }

    static func == (lhs: TokenText, rhs: TokenText) -> Bool { lhs.text.utf8.elementsEqual(rhs.text.utf8) }

    func hash(into hasher: inout Hasher) {
        var copy = text
        copy.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

/// A vocabulary: token text to id and back.
struct TokenVocabulary: Sendable {
    private(set) var ids: [TokenText: Int] = [:]
    /// The text of each id (nil where no token has that id).
    private(set) var tokens: [String?] = []

    init() {}

    /// Fails (returning the text) on a token that appears twice or an id below zero.
    init(_ entries: some Sequence<(String, Int)>) throws(TokenVocabularyError) {
        for (text, id) in entries {
            guard id >= 0 else { throw .negativeID(text) }
            guard ids.updateValue(id, forKey: TokenText(text)) == nil else { throw .duplicate(text) }
            if id >= tokens.count { tokens.append(contentsOf: repeatElement(nil, count: id + 1 - tokens.count)) }
            tokens[id] = text
        }
    }

    subscript(text: TokenText) -> Int? { ids[text] }
    subscript(text: String) -> Int? { ids[TokenText(text)] }

    func token(_ id: Int) -> String? { id >= 0 && id < tokens.count ? tokens[id] : nil }

    var count: Int { ids.count }
    var upperBound: Int { tokens.count }

    /// The entries in id order.
    var ordered: [(String, Int)] { tokens.enumerated().compactMap { id, text in text.map { ($0, id) } } }
}

/// Why a vocabulary cannot be built.
enum TokenVocabularyError: Error {
    case duplicate(String), negativeID(String)
}
