/// How a split treats the pieces its pattern matches (tokenizers' SplitDelimiterBehavior).
enum SplitBehavior: String, Sendable {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
}

/// A tokenizer.json pre-tokenizer: splits normalized text into words, and may rewrite them.
indirect enum PreTokenizer: Sendable {
    /// GPT-2's: optionally split with its regex, then map each word's bytes to scalars.
    case byteLevel(addPrefixSpace: Bool, trimOffsets: Bool, useRegex: Bool)
    case split(pattern: SplitPattern, behavior: SplitBehavior, invert: Bool)
    /// Numbers apart from the rest: each digit alone, or runs of digits.
    case digits(individualDigits: Bool)
    /// BERT's: whitespace removed, each punctuation scalar a word of its own.
    case bert
    /// `\w+|[^\w\s]+`.
    case whitespace
    case whitespaceSplit
    case sequence([PreTokenizer])

    /// The words of `pieces` after this pre-tokenizer.
    func apply(_ pieces: [[Unicode.Scalar]]) -> [[Unicode.Scalar]] {
        switch self {
        case .sequence(let steps):
            return steps.reduce(pieces) { $1.apply($0) }
        case .byteLevel(let addPrefixSpace, _, let useRegex):
            var result: [[Unicode.Scalar]] = []
            for var piece in pieces {
                if addPrefixSpace, piece.first != " " { piece.insert(" ", at: 0) }
                if useRegex {
                    let slice = piece[...]
                    for range in SplitPattern.gpt2.matches(in: slice) {
                        result.append(ByteLevel.encode(slice[range]))
                    }
                } else if !piece.isEmpty {
                    result.append(ByteLevel.encode(piece[...]))
                }
            }
            return result
        case .split(let pattern, let behavior, let invert):
            return pieces.flatMap { piece in
                Self.split(piece, matches: pattern.matches(in: piece[...]), behavior: behavior, invert: invert)
            }
        case .digits(let individualDigits):
            return pieces.flatMap { piece in
                Self.split(piece, matches: Self.scalarMatches(piece) { $0.isNumericScalar },
                           behavior: individualDigits ? .isolated : .contiguous, invert: false)
            }
        case .bert:
            return pieces.flatMap { piece in
                Self.split(piece, matches: Self.scalarMatches(piece) { $0.isWhitespaceScalar }, behavior: .removed, invert: false)
                    .flatMap { word in
                        Self.split(word, matches: Self.scalarMatches(word) { $0.isBertPunctuation }, behavior: .isolated, invert: false)
                    }
            }
        case .whitespaceSplit:
            return pieces.flatMap { piece in
                Self.split(piece, matches: Self.scalarMatches(piece) { $0.isWhitespaceScalar }, behavior: .removed, invert: false)
            }
        case .whitespace:
            return pieces.flatMap { piece in
                var words: [[Unicode.Scalar]] = []
                var current: [Unicode.Scalar] = []
                var currentIsWord = false
                for scalar in piece {
                    if scalar.isWhitespaceScalar {
                        if !current.isEmpty { words.append(current) }
                        current = []
                        continue
                    }
                    let isWord = Self.isWordScalar(scalar)
                    if !current.isEmpty, isWord != currentIsWord {
                        words.append(current)
                        current = []
                    }
                    current.append(scalar)
                    currentIsWord = isWord
                }
                if !current.isEmpty { words.append(current) }
                return words
            }
        }
    }

    /// `\w`: letters, marks, decimal digits and connector punctuation.
    private static func isWordScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
            .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation:
            return true
        default:
            return false
        }
    }

    private static func scalarMatches(_ piece: [Unicode.Scalar], _ predicate: (Unicode.Scalar) -> Bool) -> [Range<Int>] {
        piece.indices.compactMap { predicate(piece[$0]) ? $0..<($0 + 1) : nil }
    }

    /// tokenizers' `NormalizedString::split`: the matched and unmatched stretches, combined as
    /// `behavior` says; empty pieces are dropped.
    static func split(_ piece: [Unicode.Scalar], matches: [Range<Int>], behavior: SplitBehavior, invert: Bool) -> [[Unicode.Scalar]] {
        var stretches: [(range: Range<Int>, isMatch: Bool)] = []
        var position = 0
        for match in matches {
            if match.lowerBound > position { stretches.append((position..<match.lowerBound, invert)) }
            stretches.append((match, !invert))
            position = match.upperBound
        }
        if position < piece.count { stretches.append((position..<piece.count, invert)) }

        var kept: [Range<Int>] = []
        switch behavior {
        case .removed:
            kept = stretches.filter { !$0.isMatch }.map(\.range)
        case .isolated:
            kept = stretches.map(\.range)
        case .contiguous, .mergedWithPrevious:
            var previousMatch = false
            for stretch in stretches {
                let merge = behavior == .contiguous ? stretch.isMatch == previousMatch : stretch.isMatch && !previousMatch
                if merge, let last = kept.last {
                    kept[kept.count - 1] = last.lowerBound..<stretch.range.upperBound
                } else {
                    kept.append(stretch.range)
                }
                previousMatch = stretch.isMatch
            }
        case .mergedWithNext:
            var previousMatch = false
            for stretch in stretches.reversed() {
                if stretch.isMatch && !previousMatch, let last = kept.last {
                    kept[kept.count - 1] = stretch.range.lowerBound..<last.upperBound
                } else {
                    kept.append(stretch.range)
                }
                previousMatch = stretch.isMatch
            }
            kept.reverse()
        }
        return kept.compactMap { $0.isEmpty ? nil : Array(piece[$0]) }
    }
}
