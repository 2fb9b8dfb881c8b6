import QSLanguage
import QSEngine

/// Executes statements and evaluates expressions of one file: one `switch` per node kind.
/// Every error is a `Diagnostic` carrying the range of the node that failed; a command
/// handler's error is wrapped at the call.
struct Evaluator {
    unowned let session: Session
    let file: SourceFile
    /// How many recipe calls are active.
    let depth: Int

    init(session: Session, file: SourceFile, depth: Int) {
        self.session = session
        self.file = file
        self.depth = depth
    }

    // MARK: Statements

    /// Runs statements in `scope`; the value of the last one.
    mutating func execute(_ statements: [Statement], in scope: Environment) throws -> Value {
        var result = Value.none
        for statement in statements {
            result = try execute(statement, in: scope)
        }
        return result
    }

    mutating func execute(_ statement: Statement, in scope: Environment) throws -> Value {
        if let limit = session.stepLimit {
            session.steps += 1
            if session.steps > limit { throw Diagnostic.stepLimitReached(limit, file: file, range: statement.range) }
        }
        switch statement.kind {
        case .command(let call):
            if call.arguments.isEmpty, session.recipes[call.name.text] == nil, session.commands.table[call.name.text] == nil,
                let value = scope.lookup(call.name.text)
            {
                return value
            }
            return try callCommand(call, in: scope)
        case .expression(let expression):
            return try evaluate(expression, in: scope)
        case .letBinding(let name, let value):
            scope.define(name.text, try evaluate(value, in: scope))
            return .none
        case .assignment(let name, let value):
            let value = try evaluate(value, in: scope)
            guard scope.assign(name.text, value) else {
                throw Diagnostic.assignmentToUndefined(name.text, file: file, range: name.range)
            }
            return .none
        case .ifElse(let branches, let elseBlock):
            for branch in branches where try condition(branch.condition, in: scope) {
                return try execute(branch.block.statements, in: Environment(parent: scope))
            }
            if let elseBlock { return try execute(elseBlock.statements, in: Environment(parent: scope)) }
            return .none
        case .forLoop(let name, let sequence, let body):
            let value = try evaluate(sequence, in: scope)
            guard case .list(let items) = value else {
                throw Diagnostic.notIterable(value.shownWithKind, file: file, range: sequence.range)
            }
            for item in items {
                let inner = Environment(parent: scope)
                inner.define(name.text, item)
                _ = try execute(body.statements, in: inner)
            }
            return .none
        case .recipe(let declaration):
            try define(declaration, in: scope)
            return .none
        case .use(let target):
            try session.importFile(target, from: file)
            return .none
        case .print(let values):
            let texts = try values.map { try evaluate($0, in: scope).description }
            session.output(texts.joined(separator: " ") + "\n")
            return .none
        case .assert(let check, let message):
            if try !condition(check, in: scope) {
                let text = try message.map { try evaluate($0, in: scope).description }
                throw Diagnostic.assertionFailed(text, file: file, range: check.range)
            }
            return .none
        }
    }

    /// Defines a file's recipes before its first statement runs, so a recipe may be called
    /// above the place it is written (as `qs check` assumes).
    func defineRecipes(_ statements: [Statement], in scope: Environment) throws {
        for statement in statements {
            if case .recipe(let declaration) = statement.kind { try define(declaration, in: scope) }
        }
    }

    func define(_ declaration: RecipeDeclaration, in scope: Environment) throws {
        let name = declaration.name.text
        if session.commands.table[name] != nil {
            throw Diagnostic.recipeRedefined(name, file: file, range: declaration.name.range, previous: nil)
        }
        session.defineRecipe(RecipeDefinition(declaration: declaration, file: file, scope: scope, spec: declaration.commandSpec))
    }

    mutating func condition(_ expression: Expression, in scope: Environment) throws -> Bool {
        let value = try evaluate(expression, in: scope)
        guard case .bool(let truth) = value else {
            throw Diagnostic.conditionNotBool(value.shownWithKind, file: file, range: expression.range)
        }
        return truth
    }

    // MARK: Expressions

    mutating func evaluate(_ expression: Expression, in scope: Environment) throws -> Value {
        switch expression.kind {
        case .number(let value, _):
            return .number(value)
        case .ratio(let a, let b):
            return .ratio(a, b)
        case .string(let parts):
            var text = ""
            for part in parts {
                switch part {
                case .text(let piece): text += piece
                case .interpolation(let inner): text += try evaluate(inner, in: scope).description
                }
                guard text.utf8.count <= ValueLimits.stringBytes else {
                    throw Diagnostic.valueTooLarge("a string of \(text.utf8.count) bytes", limit: "\(ValueLimits.stringBytes >> 20) MB", file: file, range: expression.range)
                }
            }
            return .string(text)
        case .bool(let value):
            return .bool(value)
        case .none:
            return .none
        case .word(let word):
            return .pattern(word)
        case .variable(let name):
            if let value = scope.lookup(name) { return value }
            if session.recipes[name] != nil || session.commands.table[name] != nil {
                return try callCommand(CommandCall(name: Name(name, expression.range), arguments: [], range: expression.range), in: scope)
            }
            throw Diagnostic.undefinedVariable(name, suggestions: closeMatches(to: name, among: scope.visibleNames), file: file, range: expression.range)
        case .member(let base, let field):
            return try member(try evaluate(base, in: scope), field)
        case .index(let base, let position):
            let container = try evaluate(base, in: scope)
            let index = try evaluate(position, in: scope)
            guard case .list(let items) = container else {
                throw Diagnostic.operandType("[]", expected: "a list", found: container.shownWithKind, file: file, range: base.range)
            }
            guard case .number(let number) = index, number == number.rounded(), abs(number) < 1e15 else {
                throw Diagnostic.operandType("[]", expected: "an integer index", found: index.shownWithKind, file: file, range: position.range)
            }
            let offset = Int(number) < 0 ? items.count + Int(number) : Int(number)
            guard items.indices.contains(offset) else {
                throw Diagnostic.indexOutOfRange(Int(number), count: items.count, file: file, range: position.range)
            }
            return items[offset]
        case .list(let items):
            let list = Value.list(try items.map { try evaluate($0, in: scope) })
            if list.nestingDepth(limit: ValueLimits.depth + 1) > ValueLimits.depth {
                throw Diagnostic.valueTooDeep(limit: ValueLimits.depth, file: file, range: expression.range)
            }
            return list
        case .unary(let op, let operand):
            let value = try evaluate(operand, in: scope)
            switch (op, value) {
            case (.negate, .number(let number)): return .number(-number)
            case (.not, .bool(let truth)): return .bool(!truth)
            default:
                throw Diagnostic.operandType(op.rawValue, expected: op == .not ? "true or false" : "a number", found: value.shownWithKind, file: file, range: operand.range)
            }
        case .binary(let op, let left, let right):
            return try binary(op, left, right, in: scope, range: expression.range)
        case .command(let call):
            return try callCommand(call, in: scope)
        }
    }

    func member(_ base: Value, _ field: Name) throws -> Value {
        guard case .record(let record) = base else {
            throw Diagnostic.notARecord(field.text, found: base.shownWithKind, file: file, range: field.range)
        }
        guard let value = record[field.text] else {
            throw Diagnostic.noSuchField(field.text, fields: record.names, file: file, range: field.range)
        }
        return value
    }

    mutating func binary(_ op: BinaryOperator, _ leftExpression: Expression, _ rightExpression: Expression, in scope: Environment, range: SourceRange) throws -> Value {
        let left = try evaluate(leftExpression, in: scope)
        if op == .and || op == .or {
            guard case .bool(let first) = left else {
                throw Diagnostic.operandType(op.rawValue, expected: "true or false", found: left.shownWithKind, file: file, range: leftExpression.range)
            }
            if op == .and && !first { return .bool(false) }
            if op == .or && first { return .bool(true) }
            let right = try evaluate(rightExpression, in: scope)
            guard case .bool(let second) = right else {
                throw Diagnostic.operandType(op.rawValue, expected: "true or false", found: right.shownWithKind, file: file, range: rightExpression.range)
            }
            return .bool(second)
        }
        let right = try evaluate(rightExpression, in: scope)
        switch (op, left, right) {
        case (.equal, _, _): return .bool(left == right)
        case (.notEqual, _, _): return .bool(left != right)
        case (.add, .number(let a), .number(let b)): return .number(a + b)
        case (.subtract, .number(let a), .number(let b)): return .number(a - b)
        case (.multiply, .number(let a), .number(let b)): return .number(a * b)
        case (.divide, .number(let a), .number(let b)):
            guard b != 0 else { throw Diagnostic.divisionByZero(file: file, range: rightExpression.range) }
            return .number(a / b)
        case (.add, .string(let a), .string(let b)):
            guard a.utf8.count + b.utf8.count <= ValueLimits.stringBytes else {
                throw Diagnostic.valueTooLarge("a string of \(a.utf8.count + b.utf8.count) bytes", limit: "\(ValueLimits.stringBytes >> 20) MB", file: file, range: range)
            }
            return .string(a + b)
        case (.add, .list(let a), .list(let b)):
            guard a.count + b.count <= ValueLimits.listLength else {
                throw Diagnostic.valueTooLarge("a list of \(a.count + b.count) items", limit: "\(ValueLimits.listLength) items", file: file, range: range)
            }
            return .list(a + b)
        case (.less, .number(let a), .number(let b)): return .bool(a < b)
        case (.lessEqual, .number(let a), .number(let b)): return .bool(a <= b)
        case (.greater, .number(let a), .number(let b)): return .bool(a > b)
        case (.greaterEqual, .number(let a), .number(let b)): return .bool(a >= b)
        case (.less, _, _), (.lessEqual, _, _), (.greater, _, _), (.greaterEqual, _, _):
            if let a = left.text, let b = right.text {
                switch op {
                case .less: return .bool(a < b)
                case .lessEqual: return .bool(a <= b)
                case .greater: return .bool(a > b)
                default: return .bool(a >= b)
                }
            }
            fallthrough
        default:
            throw Diagnostic.operandTypes(op.rawValue, left.shownWithKind, right.shownWithKind, file: file, range: range)
        }
    }

    // MARK: Commands

    /// A command argument: a bare word that names a variable (or a field of one, `r.bits`) is
    /// that value; any other bare word is a pattern.
    mutating func evaluateArgument(_ expression: Expression, in scope: Environment) throws -> Value {
        guard case .word(let word) = expression.kind else { return try evaluate(expression, in: scope) }
        let parts = word.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard let root = scope.lookup(parts[0]) else { return .pattern(word) }
        var value = root
        var offset = expression.range.start + parts[0].utf8.count + 1
        for part in parts.dropFirst() {
            let range = SourceRange(offset, offset + part.utf8.count)
            value = try member(value, Name(part, range))
            offset = range.end + 1
        }
        return value
    }

    mutating func callCommand(_ call: CommandCall, in scope: Environment) throws -> Value {
        let recipe = session.recipes[call.name.text]
        let table = recipe.map { CommandTable([$0.spec]) } ?? session.table
        let bound: BoundCommand
        switch Binder(table: table).bind(call, in: file, isVariable: { scope.isDefined($0) }) {
        case .success(let result): bound = result
        case .failure(let list): throw list
        }
        var values: [String: Value] = [:]
        var ranges: [String: SourceRange] = [:]
        for argument in bound.arguments {
            // A bare word that is one of the argument's allowed words is that word, even where a
            // variable has the name (`let wanda = ...` must not change `method=wanda`).
            var value: Value
            if case .word(let word) = argument.value.kind, argument.spec.allowed.contains(word) {
                value = .pattern(word)
            } else {
                value = try evaluateArgument(argument.value, in: scope)
            }
            if case .none = value, argument.spec.allowed.contains("none") { value = .pattern("none") }
            if let problem = argument.spec.check(value.shape) {
                throw Diagnostic.badValue(problem, argument: argument.spec.name, command: call.name.text, file: file, range: argument.value.range)
            }
            values[argument.spec.name] = value
            ranges[argument.spec.name] = argument.range
        }
        if let recipe {
            return try callRecipe(recipe, values, call: call)
        }
        // Flags point where they were written too (`act_order` where it does not fit).
        for flag in bound.flags where ranges[flag.text] == nil { ranges[flag.text] = flag.range }
        for argument in bound.spec.positionals + bound.spec.options where values[argument.name] == nil {
            if let fallback = argument.defaultValue { values[argument.name] = Value(fallback) }
        }
        let invocation = CommandInvocation(
            spec: bound.spec, arguments: values, flags: Set(bound.flags.map(\.text)), file: file, range: call.range,
            argumentRanges: ranges)
        guard let handler = session.commands.handler(for: call.name.text) else {
            throw Diagnostic.commandFailed(call.name.text, reason: "has no handler", file: file, range: call.range)
        }
        do {
            // The session's kernel setting holds for the engine work of this command.
            let kernels = session.setting("kernels")?.text.flatMap(BlockKernels.Activations.init(rawValue:)) ?? .exact
            let result = try BlockKernels.$activations.withValue(kernels) { try handler(invocation, session) }
            session.workspace.record(call.name.text, source: file.text(call.range), file: file.name, line: file.location(of: call.range.start).line, result: result)
            session.onCommandResult?(call.name.text, result)
            return result
        } catch let error as CommandError {
            switch error {
            case .invalidArgument(let name, let reason):
                throw Diagnostic.argumentFailed(name, command: call.name.text, reason: reason, file: file, range: ranges[name] ?? call.range)
            case .failed(let reason):
                throw Diagnostic.commandFailed(call.name.text, reason: reason, file: file, range: call.range)
            }
        } catch let error as Diagnostic {
            throw error
        } catch let error as DiagnosticList {
            throw error
        } catch {
            throw Diagnostic.commandFailed(call.name.text, reason: "\(error)", file: file, range: call.range)
        }
    }

    func callRecipe(_ recipe: RecipeDefinition, _ values: [String: Value], call: CommandCall) throws -> Value {
        guard depth < Session.maxRecipeDepth else {
            throw Diagnostic.recursionTooDeep(call.name.text, limit: Session.maxRecipeDepth, file: file, range: call.range)
        }
        let scope = Environment(parent: recipe.scope)
        var inner = Evaluator(session: session, file: recipe.file, depth: depth + 1)
        do {
            for parameter in recipe.declaration.parameters {
                if let value = values[parameter.name.text] {
                    scope.define(parameter.name.text, value)
                } else if let fallback = parameter.defaultValue {
                    scope.define(parameter.name.text, try inner.evaluateArgument(fallback, in: scope))
                }
            }
            return try inner.execute(recipe.declaration.body.statements, in: scope)
        } catch var diagnostic as Diagnostic {
            let note = Diagnostic.recipeFailedHere(call.name.text, file: file, range: call.range)
            if !diagnostic.notes.contains(note) && diagnostic.notes.count(where: { $0.id == .recipeFailedHere }) < 4 {
                diagnostic.notes.append(note)
            }
            throw diagnostic
        }
    }
}
