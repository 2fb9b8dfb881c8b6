/// A named piece of .qs source text (a file, a REPL line, or a `-e` argument).
package struct SourceFile: Sendable, Equatable {
    /// The name shown in diagnostics: a path, `<repl>` or `<command line>`.
    package var name: String
    /// The text, as UTF-8 bytes (not necessarily valid UTF-8: the lexer reports bad bytes).
    package var bytes: [UInt8]

    package init(name: String, text: String) {
        self.name = name
        self.bytes = Array(text.utf8)
    }

    package init(name: String, bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }

    /// The text of `range`, with invalid UTF-8 replaced by U+FFFD.
    package func text(_ range: SourceRange) -> String {
        let clamped = clamp(range)
        return String(decoding: bytes[clamped.start..<clamped.end], as: UTF8.self)
    }

    /// The 1-based line and column (in characters) of a byte offset. Computed on demand: only
    /// printing a diagnostic needs it.
    package func location(of offset: Int) -> SourceLocation {
        let offset = max(0, min(offset, bytes.count))
        var line = 1
        var lineStart = 0
        for index in 0..<offset where bytes[index] == UInt8(ascii: "\n") {
            line += 1
            lineStart = index + 1
        }
        let column = characterCount(bytes[lineStart..<offset]) + 1
        return SourceLocation(line: line, column: column, lineStart: lineStart)
    }

    /// The byte range of the line that contains `offset`, without its line break.
    package func lineRange(containing offset: Int) -> SourceRange {
        let offset = max(0, min(offset, bytes.count))
        var start = offset
        while start > 0 && bytes[start - 1] != UInt8(ascii: "\n") { start -= 1 }
        var end = offset
        while end < bytes.count && bytes[end] != UInt8(ascii: "\n") && bytes[end] != UInt8(ascii: "\r") {
            end += 1
        }
        return SourceRange(start, end)
    }

    func clamp(_ range: SourceRange) -> SourceRange {
        let start = max(0, min(range.start, bytes.count))
        return SourceRange(start, max(start, min(range.end, bytes.count)))
    }

    /// The number of characters (Unicode scalars, counting each invalid byte as one) in `slice`.
    func characterCount(_ slice: ArraySlice<UInt8>) -> Int {
        slice.reduce(0) { count, byte in (byte & 0xC0) == 0x80 ? count : count + 1 }
    }
}

/// A half-open range of byte offsets into one `SourceFile`.
package struct SourceRange: Sendable, Equatable, Hashable, CustomStringConvertible {
    package var start: Int
    package var end: Int

    package init(_ start: Int, _ end: Int) {
        precondition(start <= end, "a source range ends before it starts")
        self.start = start
        self.end = end
    }

    /// An empty range at `offset` (a place rather than a span).
    package static func at(_ offset: Int) -> SourceRange { SourceRange(offset, offset) }

    /// The smallest range that covers both.
    package func union(_ other: SourceRange) -> SourceRange {
        SourceRange(min(start, other.start), max(end, other.end))
    }

    package var isEmpty: Bool { start == end }
    package var length: Int { end - start }
    package var description: String { "\(start)..<\(end)" }
}

/// A 1-based line and column, for printing.
package struct SourceLocation: Sendable, Equatable {
    package var line: Int
    package var column: Int
    /// The byte offset at which the line starts.
    package var lineStart: Int
}
