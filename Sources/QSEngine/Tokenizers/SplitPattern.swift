import Foundation

/// A pattern that splits text into pieces: the regular expressions of GPT-2 and of the
/// llama-3 / Qwen2 family are matched natively (they are what real byte-level tokenizers use,
/// and NSRegularExpression is both slower and not Oniguruma); others go to
/// NSRegularExpression, and literal strings match as they are.
enum SplitPattern: Sendable {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3(maxDigits: Int)
    case literal([Unicode.Scalar])
    case regex(NSRegularExpressionBox)

    static let gpt2Source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Source = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Source = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The pattern for a regular expression's source text.
    static func regex(_ source: String) throws -> SplitPattern {
        switch source {
        case gpt2Source: return .gpt2
        case llama3Source: return .llama3(maxDigits: 3)
        case qwen2Source: return .llama3(maxDigits: 1)
        default: return .regex(try NSRegularExpressionBox(source))
        }
    }

    /// The regular expression source (or literal) this pattern stands for.
    var source: String {
        switch self {
        case .gpt2: return Self.gpt2Source
        case .llama3(let maxDigits): return maxDigits == 1 ? Self.qwen2Source : Self.llama3Source
        case .literal(let scalars): return String(scalars: scalars)
        case .regex(let box): return box.expression.pattern
        }
    }

    var isLiteral: Bool {
        if case .literal = self { return true }
        return false
    }

    /// The ranges of `text` the pattern matches, in order, not overlapping, none empty.
    func matches(in text: ArraySlice<Unicode.Scalar>) -> [Range<Int>] {
        var result: [Range<Int>] = []
        switch self {
        case .gpt2, .llama3:
            let classes = text.map(ScalarClass.init)
            let base = text.startIndex
            text.withContiguousStorageIfAvailable { scalars in
                classes.withUnsafeBufferPointer { classes in
                    var index = 0
                    while index < scalars.count {
                        let end: Int
                        if case .llama3(let maxDigits) = self {
                            end = Self.llama3Match(scalars, classes, index, maxDigits: maxDigits)
                        } else {
                            end = Self.gpt2Match(scalars, classes, index)
                        }
                        result.append((base + index)..<(base + end))
                        index = end
                    }
                }
            }
        case .literal(let needle):
            guard !needle.isEmpty else { return [] }
            var index = text.startIndex
            while index + needle.count <= text.endIndex {
                if text[index..<(index + needle.count)].elementsEqual(needle) {
                    result.append(index..<(index + needle.count))
                    index += needle.count
                } else {
                    index += 1
                }
            }
        case .regex(let box):
            result = box.matches(in: text)
        }
        return result
    }

    private static func isApostropheSuffix(_ s: UnsafeBufferPointer<Unicode.Scalar>, _ i: Int, caseInsensitive: Bool) -> Int? {
        guard s[i] == "'", i + 1 < s.count else { return nil }
        func lower(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
            guard caseInsensitive else { return scalar }
            if scalar == "\u{17F}" { return "s" }
            if ("A"..."Z").contains(scalar) { return Unicode.Scalar(scalar.value + 32)! }
            return scalar
        }
        let first = lower(s[i + 1])
        if first == "s" || first == "t" || first == "m" || first == "d" { return i + 2 }
        guard i + 2 < s.count else { return nil }
        let second = lower(s[i + 2])
        if (first == "r" && second == "e") || (first == "v" && second == "e") || (first == "l" && second == "l") {
            return i + 3
        }
        return nil
    }

    private static func run(_ classes: UnsafeBufferPointer<ScalarClass>, from start: Int, _ kind: ScalarClass, limit: Int = .max) -> Int {
        var end = start
        while end < classes.count, classes[end] == kind, end - start < limit { end += 1 }
        return end
    }

    /// `\s+(?!\S)|\s+` at a whitespace scalar.
    private static func whitespaceMatch(_ classes: UnsafeBufferPointer<ScalarClass>, _ i: Int) -> Int {
        let end = run(classes, from: i, .whitespace)
        if end == classes.count || end - i == 1 { return end }
        return end - 1
    }

    static func gpt2Match(_ s: UnsafeBufferPointer<Unicode.Scalar>, _ classes: UnsafeBufferPointer<ScalarClass>, _ i: Int) -> Int {
        if let end = isApostropheSuffix(s, i, caseInsensitive: false) { return end }
        var start = i
        if s[i] == " ", i + 1 < s.count, classes[i + 1] != .whitespace { start = i + 1 }
        let kind = classes[start]
        if kind == .whitespace { return whitespaceMatch(classes, i) }
        return run(classes, from: start + 1, kind)
    }

    static func llama3Match(_ s: UnsafeBufferPointer<Unicode.Scalar>, _ classes: UnsafeBufferPointer<ScalarClass>, _ i: Int, maxDigits: Int) -> Int {
        if let end = isApostropheSuffix(s, i, caseInsensitive: true) { return end }
        let scalar = s[i]
        let kind = classes[i]
        let isLineBreak = scalar == "\r" || scalar == "\n"
        if kind == .letter { return run(classes, from: i + 1, .letter) }
        if kind != .number, !isLineBreak, i + 1 < s.count, classes[i + 1] == .letter {
            return run(classes, from: i + 2, .letter)
        }
        if kind == .number { return run(classes, from: i, .number, limit: maxDigits) }
        var start = i
        if scalar == " ", i + 1 < s.count, classes[i + 1] == .other { start = i + 1 }
        if classes[start] == .other {
            var end = run(classes, from: start + 1, .other)
            while end < s.count, s[end] == "\r" || s[end] == "\n" { end += 1 }
            return end
        }
        let end = run(classes, from: i, .whitespace)
        var lastBreak = end - 1
        while lastBreak >= i, s[lastBreak] != "\r", s[lastBreak] != "\n" { lastBreak -= 1 }
        if lastBreak >= i { return lastBreak + 1 }
        return whitespaceMatch(classes, i)
    }
}

/// An NSRegularExpression that may be shared across threads (it is immutable once made).
final class NSRegularExpressionBox: @unchecked Sendable {
    let expression: NSRegularExpression

    init(_ source: String) throws {
        expression = try NSRegularExpression(pattern: source)
    }

    func matches(in text: ArraySlice<Unicode.Scalar>) -> [Range<Int>] {
        let string = String(scalars: text)
        var utf16ToScalar: [Int] = []
        utf16ToScalar.reserveCapacity(text.count * 2 + 1)
        for (offset, scalar) in text.enumerated() {
            utf16ToScalar.append(offset)
            if scalar.value > 0xFFFF { utf16ToScalar.append(offset) }
        }
        utf16ToScalar.append(text.count)
        let found = expression.matches(in: string, range: NSRange(location: 0, length: utf16ToScalar.count - 1))
        return found.compactMap { match in
            let lower = utf16ToScalar[match.range.location]
            let upper = utf16ToScalar[match.range.location + match.range.length]
            return lower < upper ? (text.startIndex + lower)..<(text.startIndex + upper) : nil
        }
    }
}
