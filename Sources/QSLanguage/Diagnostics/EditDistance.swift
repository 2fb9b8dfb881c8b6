/// Edit distance between two strings over Unicode scalars: insertions, deletions,
/// substitutions and swaps of neighbours (`loda` is one edit from `load`) each cost one.
package func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.unicodeScalars)
    let b = Array(b.unicodeScalars)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var beforePrevious = [Int](repeating: 0, count: b.count + 1)
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
            current[j] = min(substitution, previous[j] + 1, current[j - 1] + 1)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                current[j] = min(current[j], beforePrevious[j - 2] + 1)
            }
        }
        (beforePrevious, previous, current) = (previous, current, beforePrevious)
    }
    return previous[b.count]
}

/// The candidates close enough to `word` to suggest as "did you mean", best first (at most
/// `limit`). Close means within a third of the word's length (at least 1, at most 3 edits; words
/// under three characters get no suggestions), or `word` being a prefix of the candidate.
package func closeMatches(to word: String, among candidates: some Sequence<String>, limit: Int = 3) -> [String] {
    let threshold = word.count < 3 ? 0 : min(3, max(1, word.count / 3))
    var scored: [(distance: Int, name: String)] = []
    for candidate in Set(candidates) where candidate != word {
        let distance = editDistance(word.lowercased(), candidate.lowercased())
        if distance <= threshold {
            scored.append((distance, candidate))
        } else if word.count >= 3 && candidate.hasPrefix(word) {
            scored.append((threshold + 1, candidate))
        }
    }
    scored.sort { $0.distance != $1.distance ? $0.distance < $1.distance : $0.name < $1.name }
    return scored.prefix(limit).map(\.name)
}
