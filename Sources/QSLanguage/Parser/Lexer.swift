/// Turns the bytes of a source file (or a range of one, for a string interpolation) into
/// tokens. A value-type cursor: it never allocates text; tokens are kinds plus ranges.
package struct Lexer {
    package let file: SourceFile
    private let bytes: [UInt8]
    private var position: Int
    private let end: Int
    package private(set) var diagnostics: [Diagnostic] = []
    /// Diagnostics kept at most: a binary or garbled file of megabytes would otherwise make one
    /// per byte. The renderer shows the first few of a file anyway.
    static let maxDiagnostics = 10_000

    /// Whether another diagnostic is still kept (check before building one: a file of bad bytes
    /// would spend its time formatting messages nobody sees).
    var keepsDiagnostics: Bool { diagnostics.count < Self.maxDiagnostics }

    mutating func report(_ diagnostic: Diagnostic) {
        if keepsDiagnostics { diagnostics.append(diagnostic) }
    }

    package init(file: SourceFile, range: SourceRange? = nil) {
        self.file = file
        self.bytes = file.bytes
        let range = file.clamp(range ?? SourceRange(0, file.bytes.count))
        self.position = range.start
        self.end = range.end
    }

    /// Every token up to and including `.end`, with the diagnostics for bad input.
    package static func tokenize(_ file: SourceFile, range: SourceRange? = nil) -> (tokens: [Token], diagnostics: [Diagnostic]) {
        var lexer = Lexer(file: file, range: range)
        var tokens: [Token] = []
        while true {
            let token = lexer.next()
            tokens.append(token)
            if token.kind == .end { break }
        }
        return (tokens, lexer.diagnostics)
    }

    /// The next token.
    package mutating func next() -> Token {
        let followsSpace = skipSpaceAndComments()
        let start = position
        guard let byte = peek() else { return Token(.end, .at(end), followsSpace: followsSpace) }
        func token(_ kind: TokenKind) -> Token { Token(kind, SourceRange(start, position), followsSpace: followsSpace) }

        switch byte {
        case UInt8(ascii: "\n"):
            position += 1
            return token(.newline)
        case UInt8(ascii: "\r"):
            position += 1
            if peek() == UInt8(ascii: "\n") { position += 1 }
            return token(.newline)
        case UInt8(ascii: "\""):
            scanString()
            return token(.string)
        case UInt8(ascii: "0")...UInt8(ascii: "9"):
            return token(scanNumberOrWord())
        default:
            break
        }
        if startsWord(at: position) {
            scanWord()
            if peek() == UInt8(ascii: "="), peek(1) != UInt8(ascii: "="), isIdentifier(SourceRange(start, position)) {
                position += 1
                return token(.optionKey)
            }
            if let keyword = Keyword(rawValue: file.text(SourceRange(start, position))) {
                return token(.keyword(keyword))
            }
            return token(.word)
        }
        for symbol in Lexer.symbolsLongestFirst where matches(symbol.rawValue) {
            position += symbol.rawValue.utf8.count
            return token(.symbol(symbol))
        }
        position += byte >= 0x80 ? utf8Length(byte) : 1
        if keepsDiagnostics { report(.unexpectedCharacter(file: file, range: SourceRange(start, position))) }
        return token(.invalid)
    }

    private static let symbolsLongestFirst = Symbol.allCases.sorted { $0.rawValue.utf8.count > $1.rawValue.utf8.count }

    private func peek(_ ahead: Int = 0) -> UInt8? {
        position + ahead < end ? bytes[position + ahead] : nil
    }

    private func matches(_ text: String) -> Bool {
        var index = position
        for byte in text.utf8 {
            guard index < end, bytes[index] == byte else { return false }
            index += 1
        }
        return true
    }

    /// Skips blanks, `#` comments and `\`-joined line breaks; says whether it skipped anything
    /// (or stands at the start of a line).
    private mutating func skipSpaceAndComments() -> Bool {
        let start = position
        while let byte = peek() {
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
                position += 1
            } else if byte == UInt8(ascii: "#") {
                while let next = peek(), next != UInt8(ascii: "\n"), next != UInt8(ascii: "\r") { position += 1 }
            } else if byte == UInt8(ascii: "\\"), peek(1) == UInt8(ascii: "\n") {
                position += 2
            } else if byte == UInt8(ascii: "\\"), peek(1) == UInt8(ascii: "\r") {
                position += peek(2) == UInt8(ascii: "\n") ? 3 : 2
            } else {
                break
            }
        }
        return position > start || start == 0 || bytes[start - 1] == UInt8(ascii: "\n")
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || byte == UInt8(ascii: "_")
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    /// Bytes that may continue a bare word: letters, digits and `_ . / - * ? ~`.
    private static func continuesWord(_ byte: UInt8) -> Bool {
        isLetter(byte) || isDigit(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "/")
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "*") || byte == UInt8(ascii: "?")
            || byte == UInt8(ascii: "~")
    }

    /// Whether a bare word starts at `index`: a letter or `_`, `~`, or one of `* ? / .` that is
    /// glued to more of a path or glob (`*.weight`, `/tmp/x`, `./out`, `../x`).
    private func startsWord(at index: Int) -> Bool {
        let byte = bytes[index]
        if Lexer.isLetter(byte) || byte == UInt8(ascii: "~") { return true }
        let next = index + 1 < end ? bytes[index + 1] : nil
        switch byte {
        case UInt8(ascii: "*"), UInt8(ascii: "?"), UInt8(ascii: "/"):
            guard let next else { return false }
            return Lexer.isLetter(next) || Lexer.isDigit(next) || next == UInt8(ascii: ".") || next == UInt8(ascii: "*")
                || next == UInt8(ascii: "/") || next == UInt8(ascii: "_")
        case UInt8(ascii: "."):
            return next == UInt8(ascii: "/") || next == UInt8(ascii: ".") || next == UInt8(ascii: "*")
        default:
            return false
        }
    }

    /// Scans a word; `[0-5]` and `[1,3]` groups count as part of it when they follow a `.`,
    /// `_` or `-` (`layer.[0-5].*`).
    private mutating func scanWord() {
        while let byte = peek() {
            if Lexer.continuesWord(byte) {
                position += 1
            } else if byte == UInt8(ascii: "["), let previous = position > 0 ? bytes[position - 1] : nil,
                previous == UInt8(ascii: ".") || previous == UInt8(ascii: "_") || previous == UInt8(ascii: "-"),
                let length = rangeGroupLength()
            {
                position += length
            } else {
                break
            }
        }
    }

    /// The length of a `[digits-digits,...]` group at the cursor, or nil.
    private func rangeGroupLength() -> Int? {
        var index = position + 1
        var sawDigit = false
        while index < end {
            let byte = bytes[index]
            if byte == UInt8(ascii: "]") { return sawDigit ? index - position + 1 : nil }
            guard Lexer.isDigit(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ",") else { return nil }
            sawDigit = sawDigit || Lexer.isDigit(byte)
            index += 1
        }
        return nil
    }

    private func isIdentifier(_ range: SourceRange) -> Bool {
        guard range.length > 0, Lexer.isLetter(bytes[range.start]) else { return false }
        return bytes[range.start..<range.end].allSatisfy { Lexer.isLetter($0) || Lexer.isDigit($0) }
    }

    /// A number, percentage or ratio; digits glued to letters make a word (`8bit`, `2024-run`
    /// stays a number followed by `-`, but `135m` is a word).
    private mutating func scanNumberOrWord() -> TokenKind {
        let start = position
        while let byte = peek(), Lexer.isDigit(byte) { position += 1 }
        if peek() == UInt8(ascii: "."), let next = peek(1), Lexer.isDigit(next) {
            position += 1
            while let byte = peek(), Lexer.isDigit(byte) { position += 1 }
        }
        if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            var index = 1
            if let sign = peek(1), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { index = 2 }
            if let digit = peek(index), Lexer.isDigit(digit) {
                position += index
                while let byte = peek(), Lexer.isDigit(byte) { position += 1 }
            }
        }
        if peek() == UInt8(ascii: "%") {
            position += 1
            return .percent
        }
        if peek() == UInt8(ascii: ":"), let next = peek(1), Lexer.isDigit(next),
            bytes[start..<position].allSatisfy(Lexer.isDigit)
        {
            position += 1
            while let byte = peek(), Lexer.isDigit(byte) { position += 1 }
            return .ratio
        }
        if let byte = peek(), Lexer.isLetter(byte) || byte == UInt8(ascii: ".") && peek(1).map(Lexer.isLetter) == true {
            scanWord()
            return .word
        }
        return .number
    }

    /// Scans a string to its closing quote on the same line, stepping over escapes. What is
    /// inside (escapes, `{...}` interpolations) is checked when the parser decodes it.
    private mutating func scanString() {
        let start = position
        position += 1
        while let byte = peek() {
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                return
            case UInt8(ascii: "\\"):
                position += 1
                if let next = peek(), next != UInt8(ascii: "\n"), next != UInt8(ascii: "\r") { position += 1 }
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                report(.unterminatedString(file: file, range: SourceRange(start, position)))
                return
            default:
                position += 1
            }
        }
        report(.unterminatedString(file: file, range: SourceRange(start, position)))
    }

    private func utf8Length(_ lead: UInt8) -> Int {
        let length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
        var count = 1
        while count < length, position + count < end, bytes[position + count] & 0xC0 == 0x80 { count += 1 }
        return count
    }
}
