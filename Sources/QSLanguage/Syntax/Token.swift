/// One token: a kind and the bytes it covers. Text is sliced from the source only when needed.
package struct Token: Sendable, Equatable {
    package var kind: TokenKind
    package var range: SourceRange
    /// Whether whitespace (or the start of a line) comes right before the token: `xs[0]` indexes,
    /// `xs [0]` passes a list.
    package var followsSpace: Bool

    package init(_ kind: TokenKind, _ range: SourceRange, followsSpace: Bool = true) {
        self.kind = kind
        self.range = range
        self.followsSpace = followsSpace
    }
}

/// What a token is.
package enum TokenKind: Sendable, Equatable {
    /// A number: `4`, `0.5`, `1e-3`.
    case number
    /// A percentage: `30%`.
    case percent
    /// A ratio of two integers: `2:4`.
    case ratio
    /// A string in double quotes, quotes included; interpolations are parsed later.
    case string
    /// A bare word: an identifier, a path or a glob (`bits`, `out/model-q4`, `layer.*.mlp.*`).
    case word
    /// A reserved word of the language.
    case keyword(Keyword)
    /// An option's name followed at once by `=` (`bits=`); the range covers both.
    case optionKey
    /// An operator or punctuation.
    case symbol(Symbol)
    /// The end of a line (comments are skipped, a `\` before the line break joins lines).
    case newline
    /// Bytes that form no token; the lexer has reported them.
    case invalid
    /// The end of the input.
    case end
}

/// The reserved words; the raw value is the spelling.
package enum Keyword: String, Sendable, Equatable, CaseIterable {
    case `let`, `if`, `else`, `for`, `in`, recipe, use, print, assert, and, or, not, `true`, `false`, `none`
}

/// Operators and punctuation; the raw value is the spelling, shared by the lexer, the printer
/// and error messages.
package enum Symbol: String, Sendable, Equatable, CaseIterable {
    case plus = "+"
    case minus = "-"
    case star = "*"
    case slash = "/"
    case equalEqual = "=="
    case notEqual = "!="
    case lessEqual = "<="
    case greaterEqual = ">="
    case less = "<"
    case greater = ">"
    case equal = "="
    case leftParen = "("
    case rightParen = ")"
    case leftBracket = "["
    case rightBracket = "]"
    case leftBrace = "{"
    case rightBrace = "}"
    case comma = ","
    case dot = "."
    case semicolon = ";"
}
