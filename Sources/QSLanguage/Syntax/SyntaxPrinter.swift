/// Prints syntax back as canonical .qs source: one statement a line, four-space indents,
/// operators spaced, every subexpression that needs it in parentheses.
package enum SyntaxPrinter {
    package static func print(_ statements: [Statement], indent: Int = 0) -> String {
        statements.map { print($0, indent: indent) }.joined()
    }

    package static func print(_ statement: Statement, indent: Int = 0) -> String {
        let pad = String(repeating: "    ", count: indent)
        switch statement.kind {
        case .command(let call):
            return pad + print(call) + "\n"
        case .letBinding(let name, let value):
            return pad + "let \(name.text) = \(print(value))\n"
        case .assignment(let name, let value):
            return pad + "\(name.text) = \(print(value))\n"
        case .ifElse(let branches, let elseBlock):
            var text = pad
            for (position, branch) in branches.enumerated() {
                text += (position == 0 ? "if " : " else if ") + print(branch.condition) + " " + block(branch.block, indent: indent)
            }
            if let elseBlock { text += " else " + block(elseBlock, indent: indent) }
            return text + "\n"
        case .forLoop(let name, let sequence, let body):
            return pad + "for \(name.text) in \(print(sequence)) " + block(body, indent: indent) + "\n"
        case .recipe(let recipe):
            let parameters = recipe.parameters.map { parameter in
                parameter.defaultValue.map { "\(parameter.name.text)=\(print($0))" } ?? parameter.name.text
            }
            return pad + "recipe \(recipe.name.text)(\(parameters.joined(separator: ", "))) " + block(recipe.body, indent: indent) + "\n"
        case .use(.file(let path, _)):
            return pad + "use \"\(escape(path))\"\n"
        case .use(.library(let name)):
            return pad + "use \(name.text)\n"
        case .print(let values):
            return pad + (["print"] + values.map { print($0) }).joined(separator: " ") + "\n"
        case .assert(let condition, let message):
            return pad + "assert \(print(condition))" + (message.map { ", " + print($0) } ?? "") + "\n"
        case .expression(let expression):
            return pad + print(expression) + "\n"
        }
    }

    static func block(_ block: Block, indent: Int) -> String {
        "{\n" + print(block.statements, indent: indent + 1) + String(repeating: "    ", count: indent) + "}"
    }

    package static func print(_ call: CommandCall) -> String {
        ([call.name.text] + call.arguments.map { given in
            switch given {
            case .positional(let value): argument(value)
            case .option(let key, let value): "\(key.text)=\(argument(value))"
            }
        }).joined(separator: " ")
    }

    /// An argument: words and literals as they are, anything else in parentheses.
    static func argument(_ value: Expression) -> String {
        switch value.kind {
        case .number, .ratio, .string, .bool, .none, .word, .list: print(value)
        case .unary(.negate, let operand) where { if case .number = operand.kind { true } else { false } }(): print(value)
        default: "(" + print(value) + ")"
        }
    }

    package static func print(_ expression: Expression) -> String {
        switch expression.kind {
        case .number(let value, let isPercent):
            return isPercent ? formatNumber(value * 100) + "%" : formatNumber(value)
        case .ratio(let a, let b):
            return "\(a):\(b)"
        case .string(let parts):
            return "\"" + parts.map { part in
                switch part {
                case .text(let text): escape(text)
                case .interpolation(let inner): "{" + print(inner) + "}"
                }
            }.joined() + "\""
        case .bool(let value):
            return value ? "true" : "false"
        case .none:
            return "none"
        case .word(let word), .variable(let word):
            return word
        case .member(let base, let name):
            return operand(base) + "." + name.text
        case .index(let base, let position):
            return operand(base) + "[" + print(position) + "]"
        case .list(let items):
            return "[" + items.map { print($0) }.joined(separator: ", ") + "]"
        case .unary(let op, let operand):
            return op == .not ? "not " + self.operand(operand) : "-" + self.operand(operand)
        case .binary(let op, let left, let right):
            return side(left, of: op, isRight: false) + " \(op.rawValue) " + side(right, of: op, isRight: true)
        case .command(let call):
            return print(call)
        }
    }

    /// An operand of a binary operator, parenthesized when it binds looser (or equally, on the
    /// right, since operators group to the left).
    static func side(_ expression: Expression, of op: BinaryOperator, isRight: Bool) -> String {
        switch expression.kind {
        case .binary(let inner, _, _):
            let needsParentheses = inner.precedence < op.precedence || (isRight && inner.precedence == op.precedence) || (inner.precedence == 3 && op.precedence == 3)
            return needsParentheses ? "(" + print(expression) + ")" : print(expression)
        case .unary(.negate, _):
            return print(expression)
        default:
            return operand(expression)
        }
    }

    /// A subexpression, parenthesized unless it is atomic.
    static func operand(_ expression: Expression) -> String {
        switch expression.kind {
        case .binary, .unary, .command: "(" + print(expression) + ")"
        default: print(expression)
        }
    }

    static func escape(_ text: String) -> String {
        var result = ""
        for character in text.unicodeScalars {
            switch character {
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            case "\0": result += "\\0"
            case "\\": result += "\\\\"
            case "\"": result += "\\\""
            case "{": result += "\\{"
            case "}": result += "\\}"
            default: result.unicodeScalars.append(character)
            }
        }
        return result
    }
}
