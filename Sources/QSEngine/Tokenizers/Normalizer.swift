import Foundation

/// A tokenizer.json normalizer: rewrites text before it is split into words.
indirect enum Normalizer: Sendable, Equatable {
    case nfc, nfd, nfkc, nfkd, lowercase
    /// BERT's: drop control characters and map whitespace to spaces, pad CJK ideographs with
    /// spaces, strip accents (NFD, then drop nonspacing marks), lowercase.
    case bert(cleanText: Bool, handleChineseChars: Bool, stripAccents: Bool?, lowercase: Bool)
    case sequence([Normalizer])

    func apply(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        switch self {
        case .nfc: return Self.foundationForm(text) { $0.precomposedStringWithCanonicalMapping }
        case .nfd: return Self.foundationForm(text) { $0.decomposedStringWithCanonicalMapping }
        case .nfkc: return Self.foundationForm(text) { $0.precomposedStringWithCompatibilityMapping }
        case .nfkd: return Self.foundationForm(text) { $0.decomposedStringWithCompatibilityMapping }
        case .lowercase: return Self.lowercased(text)
        case .sequence(let steps): return steps.reduce(text) { $1.apply($0) }
        case .bert(let cleanText, let handleChineseChars, let stripAccents, let lowercase):
            var result = text
            if cleanText {
                result = result.compactMap { scalar in
                    if scalar.value == 0 || scalar.value == 0xFFFD || Self.isControl(scalar) { return nil }
                    if scalar == "\t" || scalar == "\n" || scalar == "\r" || scalar.isWhitespaceScalar { return " " }
                    return scalar
                }
            }
            if handleChineseChars, result.contains(where: Self.isChineseCharacter) {
                var padded: [Unicode.Scalar] = []
                padded.reserveCapacity(result.count + 16)
                for scalar in result {
                    if Self.isChineseCharacter(scalar) {
                        padded.append(contentsOf: [" ", scalar, " "])
                    } else {
                        padded.append(scalar)
                    }
                }
                result = padded
            }
            if stripAccents ?? lowercase {
                result = Self.foundationForm(result) { $0.decomposedStringWithCanonicalMapping }
                result.removeAll { $0.properties.generalCategory == .nonspacingMark }
            }
            if lowercase { result = Self.lowercased(result) }
            return result
        }
    }

    private static func foundationForm(_ text: [Unicode.Scalar], _ transform: (String) -> String) -> [Unicode.Scalar] {
        if text.allSatisfy({ $0.value < 0x80 }) { return text }
        return Array(transform(String(scalars: text)).unicodeScalars)
    }

    /// Each scalar's full lowercase mapping, without context (Rust's `char::to_lowercase`).
    private static func lowercased(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var result: [Unicode.Scalar] = []
        result.reserveCapacity(text.count)
        for scalar in text {
            if scalar.value < 0x80 {
                result.append(("A"..."Z").contains(scalar) ? Unicode.Scalar(scalar.value + 32)! : scalar)
            } else {
                result.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return result
    }

    /// Other (C*) categories except tab, newline and carriage return, which count as whitespace.
    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "\t" || scalar == "\n" || scalar == "\r" { return false }
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    private static func isChineseCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
            0x2B740...0x2B81F, 0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }
}
