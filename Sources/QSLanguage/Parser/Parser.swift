/// A hand-written recursive-descent parser for .qs. It reports every error it can find in one
/// pass: after a bad statement it skips to the next one. Nesting (blocks, parentheses, lists,
/// operators, interpolations) is bounded by `maxNestingDepth`, so no input can exhaust the stack.
package struct Parser {
    /// How deep blocks and expressions may nest.
    package static let maxNestingDepth = 64
    /// Past this many diagnostics the rest of a file is not parsed (it is not a script, or it
    /// is beyond repair); the renderer shows the first few anyway.
    package static let maxDiagnostics = 1000

    package let file: SourceFile
    var tokens: [Token]
    var index = 0
    package internal(set) var diagnostics: [Diagnostic]
    var depth: Int
    /// Set once the nesting limit was hit: the rest of the input is not parsed.
    var abandoned = false
    /// Set once an unclosed block at the end of input was reported, so outer blocks stay quiet.
    var reportedUnclosedBlock = false

    /// Thrown inside the parser when a diagnostic has been recorded and the statement is given up.
    struct Failure: Error {}

    init(file: SourceFile, range: SourceRange? = nil, depth: Int = 0) {
        let (tokens, diagnostics) = Lexer.tokenize(file, range: range)
        self.file = file
        self.tokens = tokens
        self.diagnostics = diagnostics
        self.depth = depth
    }

    /// Parses a whole file; the diagnostics are empty when it is well formed.
    package static func parse(_ file: SourceFile) -> (unit: SourceUnit, diagnostics: [Diagnostic]) {
        var parser = Parser(file: file)
        let statements = parser.parseStatements(inBlock: false)
        return (SourceUnit(file: file, statements: statements), parser.diagnostics)
    }

    // MARK: Tokens

    var current: Token { tokens[index] }

    func peek(_ ahead: Int = 1) -> Token { tokens[min(index + ahead, tokens.count - 1)] }

    func text(_ token: Token) -> String { file.text(token.range) }

    @discardableResult
    mutating func advance() -> Token {
        let token = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return token
    }

    func isSymbol(_ symbol: Symbol, _ token: Token? = nil) -> Bool { (token ?? current).kind == .symbol(symbol) }

    func isKeyword(_ keyword: Keyword, _ token: Token? = nil) -> Bool { (token ?? current).kind == .keyword(keyword) }

    /// Whether the token ends a statement: a line break, `;`, `}` or the end of input.
    func endsStatement(_ token: Token) -> Bool {
        switch token.kind {
        case .newline, .end, .symbol(.semicolon), .symbol(.rightBrace): true
        default: false
        }
    }

    mutating func skipNewlines() {
        while current.kind == .newline { advance() }
    }

    /// Records a diagnostic (unless the lexer already reported the bad token) and gives up.
    mutating func fail(_ diagnostic: Diagnostic) -> Failure {
        if current.kind != .invalid { diagnostics.append(diagnostic) }
        return Failure()
    }

    /// Records an "expected ..., found ..." error at the current token.
    mutating func failExpected(_ what: String) -> Failure {
        fail(.expected(what, found: describe(current), file: file, range: current.range))
    }

    /// How a token is named in messages.
    func describe(_ token: Token) -> String {
        switch token.kind {
        case .newline: "end of line"
        case .end: "end of input"
        case .string: "a string"
        default: "'\(text(token))'"
        }
    }

    mutating func expect(_ symbol: Symbol, _ what: String) throws(Failure) -> Token {
        guard isSymbol(symbol) else { throw failExpected(what) }
        return advance()
    }

    /// One more level of nesting; past the limit, reports once and abandons the input.
    mutating func enter() throws(Failure) {
        depth += 1
        if depth > Parser.maxNestingDepth {
            if !abandoned {
                diagnostics.append(.nestingTooDeep(limit: Parser.maxNestingDepth, file: file, range: current.range))
            }
            abandoned = true
            throw Failure()
        }
    }

    // MARK: Statements

    /// Statements up to the end of input, or (in a block) up to a `}` which is left in place.
    mutating func parseStatements(inBlock: Bool) -> [Statement] {
        var statements: [Statement] = []
        while !abandoned {
            while current.kind == .newline || isSymbol(.semicolon) { advance() }
            if current.kind == .end { break }
            if diagnostics.count >= Parser.maxDiagnostics {
                diagnostics.append(.tooManyErrors(limit: Parser.maxDiagnostics, file: file, range: current.range))
                abandoned = true
                break
            }
            if isSymbol(.rightBrace) {
                if inBlock { break }
                diagnostics.append(.unmatchedClosingBrace(file: file, range: current.range))
                advance()
                continue
            }
            do throws(Failure) {
                statements.append(try parseStatement())
            } catch {
                synchronize()
            }
        }
        return statements
    }

    /// Skips to the start of the next statement, stepping over whole `{ ... }` blocks.
    mutating func synchronize() {
        var braces = 0
        while current.kind != .end && !abandoned {
            switch current.kind {
            case .symbol(.leftBrace):
                braces += 1
            case .symbol(.rightBrace):
                if braces == 0 { return }
                braces -= 1
            case .newline, .symbol(.semicolon):
                if braces == 0 {
                    advance()
                    return
                }
            default:
                break
            }
            advance()
        }
    }

    mutating func parseStatement() throws(Failure) -> Statement {
        let start = current.range.start
        let kind: Statement.Kind
        switch current.kind {
        case .keyword(.let):
            advance()
            let name = try parseName(after: "let")
            guard isSymbol(.equal) else { throw failExpected("'=' after 'let \(name.text)'") }
            advance()
            kind = .letBinding(name, try parseValue())
        case .keyword(.if):
            kind = try parseIf()
        case .keyword(.for):
            kind = try parseFor()
        case .keyword(.recipe):
            kind = .recipe(try parseRecipe())
        case .keyword(.use):
            kind = try parseUse()
        case .keyword(.print):
            advance()
            var values: [Expression] = []
            while !endsStatement(current) {
                values.append(try parseExpression())
            }
            kind = .print(values)
        case .keyword(.assert):
            let keyword = advance()
            guard !endsStatement(current) else {
                throw fail(.assertWithoutCondition(file: file, range: keyword.range))
            }
            let condition = try parseCondition()
            var message: Expression?
            if isSymbol(.comma) {
                advance()
                message = try parseExpression()
            }
            kind = .assert(condition, message: message)
        case .keyword(.else):
            throw fail(.elseWithoutIf(file: file, range: current.range))
        case .optionKey:
            let token = advance()
            let name = Name(file.text(SourceRange(token.range.start, token.range.end - 1)), SourceRange(token.range.start, token.range.end - 1))
            kind = .assignment(name, try parseValue())
        case .word where startsExpression():
            kind = .expression(try parseExpression())
        case .number, .percent, .ratio, .string, .symbol(.leftParen), .symbol(.leftBracket), .symbol(.minus),
            .keyword(.not), .keyword(.true), .keyword(.false), .keyword(.none):
            kind = .expression(try parseExpression())
        case .word where isIdentifier(text(current)):
            if isSymbol(.equal, peek()) {
                let token = advance()
                advance()
                kind = .assignment(Name(text(token), token.range), try parseValue())
            } else {
                kind = .command(try parseCommand())
            }
        case .word:
            throw fail(.expectedCommand(found: text(current), file: file, range: current.range))
        default:
            throw failExpected("a command or statement")
        }
        let statement = Statement(kind, SourceRange(start, tokens[max(index - 1, 0)].range.end))
        if !endsStatement(current) {
            throw fail(.expectedEndOfStatement(found: describe(current), file: file, range: current.range))
        }
        return statement
    }

    /// A name for `let`, `for` or `recipe`.
    mutating func parseName(after keyword: String) throws(Failure) -> Name {
        guard current.kind == .word, isIdentifier(text(current)) else {
            throw failExpected("a name after '\(keyword)'")
        }
        let token = advance()
        return Name(text(token), token.range)
    }

    /// The right side of `let` or `=`: a command when a bare name is followed by arguments
    /// (`let r = eval ppl shakespeare`), otherwise an expression.
    mutating func parseValue() throws(Failure) -> Expression {
        if current.kind == .word, isIdentifier(text(current)), startsArgument(peek()) {
            let call = try parseCommand()
            return Expression(.command(call), call.range)
        }
        return try parseExpression()
    }

    /// Whether a statement that starts with a word is an expression rather than a command: a
    /// field access (`r.ppl`), an index (`xs[0]`), or a name followed by an operator (`n + m`).
    /// A lone `*` after a name is the glob "everything" (`quantize * bits=4`) unless a number or
    /// `(` follows it (`n * 2`).
    func startsExpression() -> Bool {
        let word = text(current)
        if word.contains("."), memberChain(word, at: current.range.start) != nil { return true }
        guard isIdentifier(word) else { return false }
        let next = peek()
        if next.kind == .symbol(.leftBracket) && !next.followsSpace { return true }
        guard let op = binaryOperator(next) else { return false }
        if op == .multiply {
            let after = peek(2)
            return after.kind == .number || after.kind == .symbol(.leftParen)
        }
        return op != .subtract || !startsArgument(next)
    }

    /// Whether a token after a name begins a command argument rather than continuing an expression.
    func startsArgument(_ token: Token) -> Bool {
        switch token.kind {
        case .number, .percent, .ratio, .string, .word, .optionKey, .keyword(.true), .keyword(.false), .keyword(.none):
            true
        case .symbol(.leftBracket), .symbol(.leftParen):
            token.followsSpace
        case .symbol(.minus):
            token.followsSpace && peek(2).range.start == token.range.end
        default:
            false
        }
    }

    mutating func parseCondition() throws(Failure) -> Expression {
        let condition = try parseExpression()
        if isSymbol(.equal) {
            throw fail(.assignmentInCondition(file: file, range: current.range).fixing(current.range, with: "=="))
        }
        return condition
    }

    mutating func parseIf() throws(Failure) -> Statement.Kind {
        var branches: [ConditionalBlock] = []
        advance()
        branches.append(ConditionalBlock(condition: try parseCondition(), block: try parseBlock(after: "if")))
        while true {
            var lookahead = index
            while tokens[lookahead].kind == .newline { lookahead += 1 }
            guard isKeyword(.else, tokens[lookahead]) else { break }
            index = lookahead
            advance()
            if isKeyword(.if) {
                advance()
                branches.append(ConditionalBlock(condition: try parseCondition(), block: try parseBlock(after: "else if")))
            } else {
                return .ifElse(branches, elseBlock: try parseBlock(after: "else"))
            }
        }
        return .ifElse(branches, elseBlock: nil)
    }

    mutating func parseFor() throws(Failure) -> Statement.Kind {
        advance()
        let name = try parseName(after: "for")
        guard isKeyword(.in) else { throw failExpected("'in' after 'for \(name.text)'") }
        advance()
        let sequence = try parseExpression()
        return .forLoop(name, sequence, try parseBlock(after: "for"))
    }

    mutating func parseRecipe() throws(Failure) -> RecipeDeclaration {
        let keyword = advance()
        if depth > 0 { throw fail(.nestedRecipe(file: file, range: keyword.range)) }
        let name = try parseName(after: "recipe")
        var parameters: [Parameter] = []
        if isSymbol(.leftParen) {
            let open = advance()
            skipNewlines()
            while !isSymbol(.rightParen) {
                let parameter: Parameter
                if current.kind == .optionKey {
                    let token = advance()
                    let range = SourceRange(token.range.start, token.range.end - 1)
                    parameter = Parameter(name: Name(file.text(range), range), defaultValue: try parseArgumentValue())
                } else {
                    let name = try parseName(after: "(")
                    if isSymbol(.equal) {
                        advance()
                        parameter = Parameter(name: name, defaultValue: try parseArgumentValue())
                    } else {
                        parameter = Parameter(name: name, defaultValue: nil)
                    }
                }
                if parameters.contains(where: { $0.name.text == parameter.name.text }) {
                    diagnostics.append(.duplicateParameter(parameter.name.text, file: file, range: parameter.name.range))
                }
                parameters.append(parameter)
                skipNewlines()
                if isSymbol(.comma) {
                    advance()
                    skipNewlines()
                } else if !isSymbol(.rightParen) {
                    if current.kind == .end || isSymbol(.leftBrace) {
                        throw fail(.unclosedDelimiter(")", file: file, range: current.range).noting("'(' opened here", file: file, range: open.range))
                    }
                    throw failExpected("',' or ')' in the parameter list")
                }
            }
            advance()
        }
        return RecipeDeclaration(name: name, parameters: parameters, body: try parseBlock(after: "recipe \(name.text)"))
    }

    mutating func parseUse() throws(Failure) -> Statement.Kind {
        advance()
        if current.kind == .string {
            let token = advance()
            let parts = decodeString(token)
            guard parts.allSatisfy({ if case .text = $0 { true } else { false } }) else {
                throw fail(.interpolatedImport(file: file, range: token.range))
            }
            let path = parts.map { if case .text(let text) = $0 { text } else { "" } }.joined()
            return .use(.file(path, token.range))
        }
        if current.kind == .word {
            let token = advance()
            return .use(.library(Name(text(token), token.range)))
        }
        throw failExpected("a file name or library name after 'use'")
    }

    /// `{ statements }`; a missing `}` at the end of input is reported at the `{`.
    mutating func parseBlock(after what: String) throws(Failure) -> Block {
        guard isSymbol(.leftBrace) else { throw failExpected("'{' after '\(what)'") }
        let open = advance()
        try enter()
        defer { depth -= 1 }
        let statements = parseStatements(inBlock: true)
        if abandoned { throw Failure() }
        guard isSymbol(.rightBrace) else {
            if !reportedUnclosedBlock {
                diagnostics.append(.unclosedBlock(file: file, range: .at(current.range.start)).noting("'{' opened here", file: file, range: open.range))
                reportedUnclosedBlock = true
            }
            return Block(statements: statements, range: SourceRange(open.range.start, current.range.start))
        }
        let close = advance()
        return Block(statements: statements, range: open.range.union(close.range))
    }

    // MARK: Commands

    /// A command name followed by its arguments up to the end of the statement.
    mutating func parseCommand() throws(Failure) -> CommandCall {
        let nameToken = advance()
        let name = Name(text(nameToken), nameToken.range)
        var arguments: [Argument] = []
        while !endsStatement(current) {
            if current.kind == .optionKey {
                let token = advance()
                let keyRange = SourceRange(token.range.start, token.range.end - 1)
                if endsStatement(current) || current.followsSpace {
                    throw fail(.missingOptionValue(file.text(keyRange), file: file, range: token.range))
                }
                arguments.append(.option(Name(file.text(keyRange), keyRange), try parseArgumentValue()))
            } else if isSymbol(.leftBrace) {
                throw fail(.unexpectedBlock(command: name.text, file: file, range: current.range))
            } else if isSymbol(.star), endsStatement(peek()) || peek().followsSpace {
                let star = advance()
                arguments.append(.positional(Expression(.word("*"), star.range)))
            } else {
                arguments.append(.positional(try parseArgumentValue()))
            }
        }
        let end = arguments.last?.range.end ?? name.range.end
        return CommandCall(name: name, arguments: arguments, range: SourceRange(name.range.start, end))
    }

    /// One command argument: a literal, bare word, list, `-number` or a parenthesized expression.
    mutating func parseArgumentValue() throws(Failure) -> Expression {
        if isSymbol(.minus), peek().range.start == current.range.end, peek().kind == .number || peek().kind == .percent {
            let minus = advance()
            try enter()
            defer { depth -= 1 }
            let operand = try parsePrimary(argument: true)
            return Expression(.unary(.negate, operand), minus.range.union(operand.range))
        }
        return try parsePostfix(try parsePrimary(argument: true))
    }

    func isIdentifier(_ text: String) -> Bool {
        guard let first = text.utf8.first, first == UInt8(ascii: "_") || (first | 0x20 >= UInt8(ascii: "a") && first | 0x20 <= UInt8(ascii: "z")) else {
            return false
        }
        return text.utf8.allSatisfy { byte in
            byte == UInt8(ascii: "_") || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z"))
        }
    }
}
