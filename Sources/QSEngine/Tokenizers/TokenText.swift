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

/// A vocabulary: token text to id and back. Ids come from the file and may have gaps, so the
/// id → text map is a dictionary: nothing is sized by an id (an id of 2^40 costs one entry).
struct TokenVocabulary: Sendable {
    private(set) var ids: [TokenText: Int] = [:]
    /// The text of each id that has a token.
    private(set) var tokens: [Int: String] = [:]
    /// One more than the largest id (0 when empty).
    private(set) var upperBound = 0

    init() {}

    /// Fails (returning the text) on a token that appears twice or an id below zero; of two
    /// tokens with one id, the first is the id's text.
    init(_ entries: some Sequence<(String, Int)>) throws(TokenVocabularyError) {
        for (text, id) in entries {
            guard id >= 0 else { throw .negativeID(text) }
            // Ids are 32-bit inside the BPE merge tables, as in every tokenizer library.
            guard id <= ModelConfig.maxSize else { throw .idTooLarge(text, id) }
            guard ids.updateValue(id, forKey: TokenText(text)) == nil else { throw .duplicate(text) }
            if tokens[id] == nil { tokens[id] = text }
            upperBound = max(upperBound, id + 1)
        }
    }

    subscript(text: TokenText) -> Int? { ids[text] }
    subscript(text: String) -> Int? { ids[TokenText(text)] }

    func token(_ id: Int) -> String? { tokens[id] }

    var count: Int { ids.count }

    /// The entries in id order.
    var ordered: [(String, Int)] { tokens.sorted { $0.key < $1.key }.map { ($0.value, $0.key) } }
}

/// Why a vocabulary cannot be built.
enum TokenVocabularyError: Error {
    case duplicate(String), negativeID(String), idTooLarge(String, Int)
}
