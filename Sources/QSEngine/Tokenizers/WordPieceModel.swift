/// WordPiece: each word is cut greedily into the longest vocabulary entries from the left,
/// pieces after the first carrying the continuation prefix; a word that cannot be cut, or is
/// too long, is the unknown token.
struct WordPieceModel: Sendable {
    var vocabulary: TokenVocabulary
    var unknownToken: String
    var continuingSubwordPrefix: String
    var maxInputCharsPerWord: Int

    func tokenize(_ word: [Unicode.Scalar], into output: inout [Int]) {
        let unknown = vocabulary[unknownToken]
        guard word.count <= maxInputCharsPerWord else {
            if let unknown { output.append(unknown) }
            return
        }
        var pieces: [Int] = []
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int?
            while start < end {
                var text = start > 0 ? continuingSubwordPrefix : ""
                text.unicodeScalars.append(contentsOf: word[start..<end])
                if let id = vocabulary[text] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let id = found else {
                if let unknown { output.append(unknown) }
                return
            }
            pieces.append(id)
            start = end
        }
        output.append(contentsOf: pieces)
    }
}
