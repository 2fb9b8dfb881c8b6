extension Parser {
    /// A full expression: `or` binds loosest, then `and`, `not`, comparisons, `+ -`, `* /`,
    /// unary minus, and member access and indexing tightest.
    mutating func parseExpression() throws(Failure) -> Expression {
        try parseBinary(minimumPrecedence: 1)
    }

    func binaryOperator(_ token: Token) -> BinaryOperator? {
        switch token.kind {
        case .keyword(.and): .and
        case .keyword(.or): .or
        case .symbol(let symbol): BinaryOperator(rawValue: symbol.rawValue)
        default: nil
        }
    }

    mutating func parseBinary(minimumPrecedence: Int) throws(Failure) -> Expression {
        var left = try parseUnary()
        var applied = 0
        defer { depth -= applied }
        var lastComparison: Token?
        while let op = binaryOperator(current), op.precedence >= minimumPrecedence {
            let token = advance()
            if op.precedence == 3 {
                if let lastComparison {
                    throw fail(.chainedComparison(file: file, range: token.range).noting("first comparison here", file: file, range: lastComparison.range))
                }
                lastComparison = token
            }
            try enter()
            applied += 1
            let right = try parseBinary(minimumPrecedence: op.precedence + 1)
            left = Expression(.binary(op, left, right), left.range.union(right.range))
        }
        return left
    }

    mutating func parseUnary() throws(Failure) -> Expression {
        if isSymbol(.minus) || isKeyword(.not) {
            let token = advance()
            try enter()
            defer { depth -= 1 }
            let op: UnaryOperator = token.kind == .keyword(.not) ? .not : .negate
            let operand = op == .not ? try parseBinary(minimumPrecedence: 3) : try parseUnary()
            return Expression(.unary(op, operand), token.range.union(operand.range))
        }
        return try parsePostfix(try parsePrimary(argument: false))
    }

    /// Member access (`.name`) and indexing (`[i]`, only when the `[` touches what it indexes).
    mutating func parsePostfix(_ base: Expression) throws(Failure) -> Expression {
        var result = base
        var applied = 0
        defer { depth -= applied }
        while true {
            if isSymbol(.dot), peek().kind == .word, peek().range.start == current.range.end {
                advance()
                let word = advance()
                guard let chain = memberChain(text(word), at: word.range.start) else {
                    throw fail(.expected("a field name after '.'", found: describe(word), file: file, range: word.range))
                }
                for member in chain {
                    try enter()
                    applied += 1
                    result = Expression(.member(result, member), result.range.union(member.range))
                }
            } else if isSymbol(.leftBracket), !current.followsSpace {
                let open = advance()
                try enter()
                applied += 1
                let position = try parseExpression()
                guard isSymbol(.rightBracket) else {
                    throw fail(.expected("']'", found: describe(current), file: file, range: current.range).noting("'[' opened here", file: file, range: open.range))
                }
                let close = advance()
                result = Expression(.index(result, position), result.range.union(close.range))
            } else {
                return result
            }
        }
    }

    /// Splits `a.b.c` into names with their ranges; nil unless every part is an identifier.
    func memberChain(_ text: String, at offset: Int) -> [Name]? {
        var names: [Name] = []
        var start = offset
        for part in text.split(separator: ".", omittingEmptySubsequences: false) {
            guard isIdentifier(String(part)) else { return nil }
            names.append(Name(String(part), SourceRange(start, start + part.utf8.count)))
            start += part.utf8.count + 1
        }
        return names
    }

    /// A literal, name, list or parenthesized expression. As a command argument (`argument`),
    /// a bare word stays a word (the interpreter reads it as a variable only if one exists).
    mutating func parsePrimary(argument: Bool) throws(Failure) -> Expression {
        let token = current
        switch token.kind {
        case .number:
            advance()
            return Expression(.number(try number(token), isPercent: false), token.range)
        case .percent:
            advance()
            return Expression(.number(try number(token, dropLast: 1) / 100, isPercent: true), token.range)
        case .ratio:
            advance()
            let parts = text(token).split(separator: ":")
            guard parts.count == 2, let a = Int(parts[0]), let b = Int(parts[1]) else {
                throw fail(.numberTooLarge(text(token), file: file, range: token.range))
            }
            return Expression(.ratio(a, b), token.range)
        case .string:
            advance()
            return Expression(.string(decodeString(token)), token.range)
        case .keyword(.true), .keyword(.false):
            advance()
            return Expression(.bool(token.kind == .keyword(.true)), token.range)
        case .keyword(.none):
            advance()
            return Expression(.none, token.range)
        case .word:
            advance()
            let word = text(token)
            if !argument, let chain = memberChain(word, at: token.range.start) {
                if depth + chain.count > Parser.maxNestingDepth {
                    abandoned = true
                    diagnostics.append(.nestingTooDeep(limit: Parser.maxNestingDepth, file: file, range: token.range))
                    throw Failure()
                }
                var result = Expression(.variable(chain[0].text), chain[0].range)
                for member in chain.dropFirst() {
                    result = Expression(.member(result, member), result.range.union(member.range))
                }
                return result
            }
            return Expression(.word(word), token.range)
        case .symbol(.leftParen):
            let open = advance()
            try enter()
            defer { depth -= 1 }
            skipNewlines()
            let inner = try parseExpression()
            skipNewlines()
            guard isSymbol(.rightParen) else {
                throw fail(.expected("')'", found: describe(current), file: file, range: current.range).noting("'(' opened here", file: file, range: open.range))
            }
            let close = advance()
            return Expression(inner.kind, open.range.union(close.range))
        case .symbol(.leftBracket):
            let open = advance()
            try enter()
            defer { depth -= 1 }
            var elements: [Expression] = []
            skipNewlines()
            while !isSymbol(.rightBracket) {
                if current.kind == .end || endsStatement(current) && current.kind != .newline {
                    throw fail(.unclosedDelimiter("]", file: file, range: current.range).noting("'[' opened here", file: file, range: open.range))
                }
                elements.append(argument ? try parseArgumentValue() : try parseExpression())
                skipNewlines()
                if isSymbol(.comma) {
                    advance()
                    skipNewlines()
                } else if !isSymbol(.rightBracket) {
                    if current.kind == .end {
                        throw fail(.unclosedDelimiter("]", file: file, range: current.range).noting("'[' opened here", file: file, range: open.range))
                    }
                    throw failExpected("',' or ']' in the list")
                }
            }
            let close = advance()
            return Expression(.list(elements), open.range.union(close.range))
        case .optionKey:
            throw fail(.optionOutsideCommand(file: file, range: token.range))
        default:
            throw failExpected(argument ? "an argument" : "an expression")
        }
    }

    mutating func number(_ token: Token, dropLast: Int = 0) throws(Failure) -> Double {
        let range = SourceRange(token.range.start, token.range.end - dropLast)
        guard let value = Double(file.text(range)), value.isFinite else {
            throw fail(.numberTooLarge(file.text(token.range), file: file, range: token.range))
        }
        return value
    }

    /// Decodes a string token into text and interpolations, reporting bad escapes, unclosed or
    /// empty `{}` and invalid UTF-8. Interpolations are parsed as expressions in place, so their
    /// ranges point into the file.
    mutating func decodeString(_ token: Token) -> [StringPart] {
        let bytes = file.bytes
        let start = token.range.start + 1
        var end = token.range.end
        if end > start, bytes[end - 1] == UInt8(ascii: "\"") { end -= 1 }
        var parts: [StringPart] = []
        var buffer: [UInt8] = []
        var position = start
        func flush(_ parser: inout Parser) {
            guard !buffer.isEmpty else { return }
            if let text = String(validating: buffer, as: UTF8.self) {
                parts.append(.text(text))
            } else {
                parser.diagnostics.append(.invalidUTF8(file: parser.file, range: token.range))
                parts.append(.text(String(decoding: buffer, as: UTF8.self)))
            }
            buffer.removeAll()
        }
        while position < end {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\\") {
                guard position + 1 < end else {
                    buffer.append(byte)
                    position += 1
                    continue
                }
                let escaped = bytes[position + 1]
                switch escaped {
                case UInt8(ascii: "n"): buffer.append(UInt8(ascii: "\n"))
                case UInt8(ascii: "t"): buffer.append(UInt8(ascii: "\t"))
                case UInt8(ascii: "r"): buffer.append(UInt8(ascii: "\r"))
                case UInt8(ascii: "0"): buffer.append(0)
                case UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "{"), UInt8(ascii: "}"): buffer.append(escaped)
                default:
                    diagnostics.append(.invalidEscape(file.text(SourceRange(position, position + 2)), file: file, range: SourceRange(position, position + 2)))
                    buffer.append(escaped)
                }
                position += 2
            } else if byte == UInt8(ascii: "{") {
                var close = position + 1
                while close < end, bytes[close] != UInt8(ascii: "}") { close += 1 }
                guard close < end else {
                    diagnostics.append(.unclosedInterpolation(file: file, range: SourceRange(position, position + 1)))
                    position = end
                    break
                }
                flush(&self)
                let inner = SourceRange(position + 1, close)
                if let expression = parseInterpolation(inner, open: position) {
                    parts.append(.interpolation(expression))
                }
                position = close + 1
            } else {
                buffer.append(byte)
                position += 1
            }
        }
        flush(&self)
        return parts
    }

    /// Parses the expression inside `{...}` of a string.
    mutating func parseInterpolation(_ range: SourceRange, open: Int) -> Expression? {
        if file.bytes[range.start..<range.end].allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) {
            diagnostics.append(.emptyInterpolation(file: file, range: SourceRange(open, range.end + 1)))
            return nil
        }
        var inner = Parser(file: file, range: range, depth: depth + 1)
        defer {
            diagnostics += inner.diagnostics
            abandoned = abandoned || inner.abandoned
        }
        if inner.depth > Parser.maxNestingDepth {
            inner.diagnostics.append(.nestingTooDeep(limit: Parser.maxNestingDepth, file: file, range: range))
            inner.abandoned = true
            return nil
        }
        do throws(Failure) {
            let expression = try inner.parseExpression()
            guard inner.current.kind == .end else {
                throw inner.fail(.badInterpolation(found: inner.describe(inner.current), file: file, range: inner.current.range))
            }
            return expression
        } catch {
            return nil
        }
    }
}
