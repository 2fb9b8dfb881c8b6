/// `qs check`'s core: parses a file and the files it imports, binds every command against the
/// table (and the recipes the files define), and looks for undefined variables, without
/// running anything. Returns every problem, in source order per file.
package struct Checker {
    package var table: CommandTable
    /// Finds and reads the file a `use` names, given the importing file. Without one, imports are
    /// not followed (and recipes they define count as unknown commands).
    package var resolveImport: ((ImportTarget, SourceFile) -> Result<SourceFile, Diagnostic>)?
    /// Variables that exist before the file runs (a REPL session's).
    package var knownVariables: Set<String> = []

    /// How deep `use` may chain files (a file that imports one that imports one ...). `qs run`
    /// stops at the same depth.
    package static let maxImportDepth = 64

    package init(table: CommandTable, resolveImport: ((ImportTarget, SourceFile) -> Result<SourceFile, Diagnostic>)? = nil) {
        self.table = table
        self.resolveImport = resolveImport
    }

    package func check(_ file: SourceFile) -> [Diagnostic] {
        var state = State()
        load(file, stack: [], state: &state)
        var commands = table
        var recipes: [String: (SourceFile, SourceRange)] = [:]
        for unit in state.units {
            for statement in unit.statements {
                guard case .recipe(let recipe) = statement.kind else { continue }
                if let previous = recipes[recipe.name.text] {
                    state.diagnostics.append(.recipeRedefined(recipe.name.text, file: unit.file, range: recipe.name.range, previous: previous))
                } else if table[recipe.name.text] != nil {
                    state.diagnostics.append(.recipeRedefined(recipe.name.text, file: unit.file, range: recipe.name.range, previous: nil))
                } else {
                    recipes[recipe.name.text] = (unit.file, recipe.name.range)
                    commands.add(recipe.commandSpec)
                }
            }
        }
        for unit in state.units {
            var walker = ScopeWalker(file: unit.file, binder: Binder(table: commands))
            walker.globals = knownVariables.union(unit.statements.compactMap { statement in
                if case .letBinding(let name, _) = statement.kind { name.text } else { nil }
            })
            walker.walk(unit.statements)
            state.diagnostics += walker.diagnostics
        }
        return state.diagnostics
    }

    struct State {
        var units: [SourceUnit] = []
        var loaded: Set<String> = []
        var diagnostics: [Diagnostic] = []
    }

    private func load(_ file: SourceFile, stack: [String], state: inout State) {
        state.loaded.insert(file.name)
        let (unit, diagnostics) = Parser.parse(file)
        state.diagnostics += diagnostics
        state.units.append(unit)
        guard let resolveImport else { return }
        for statement in unit.statements {
            guard case .use(let target) = statement.kind else { continue }
            switch resolveImport(target, file) {
            case .failure(let diagnostic):
                state.diagnostics.append(diagnostic)
            case .success(let imported):
                if imported.name == file.name || stack.contains(imported.name) {
                    let chain = Array(stack.drop { $0 != imported.name }) + [file.name, imported.name]
                    state.diagnostics.append(.importCycle(chain, file: file, range: target.range))
                } else if !state.loaded.contains(imported.name) {
                    guard stack.count + 1 < Checker.maxImportDepth else {
                        state.diagnostics.append(.importTooDeep(limit: Checker.maxImportDepth, file: file, range: target.range))
                        continue
                    }
                    load(imported, stack: stack + [file.name], state: &state)
                }
            }
        }
    }
}

extension RecipeDeclaration {
    /// The command a recipe defines: its parameters are positionals (required unless they have
    /// a default) that may also be given as `name=value`.
    package var commandSpec: CommandSpec {
        CommandSpec(
            name.text, summary: "a recipe",
            positionals: parameters.map { parameter in
                ArgumentSpec(parameter.name.text, .any, help: "", required: parameter.defaultValue == nil)
            })
    }
}

/// Walks statements with a stack of the names each scope defines, binding commands and
/// reporting undefined variables.
struct ScopeWalker {
    let file: SourceFile
    let binder: Binder
    var globals: Set<String> = []
    var scopes: [Set<String>] = [[]]
    var diagnostics: [Diagnostic] = []

    init(file: SourceFile, binder: Binder) {
        self.file = file
        self.binder = binder
    }

    func isDefined(_ name: String) -> Bool {
        scopes.contains { $0.contains(name) } || globals.contains(name)
    }

    var visibleNames: [String] { scopes.flatMap { $0 } + globals }

    mutating func walk(_ statements: [Statement]) {
        for statement in statements { walk(statement) }
    }

    mutating func walkBlock(_ block: Block, defining names: [String] = []) {
        scopes.append(Set(names))
        walk(block.statements)
        scopes.removeLast()
    }

    mutating func walk(_ statement: Statement) {
        switch statement.kind {
        case .command(let call):
            if call.arguments.isEmpty && isDefined(call.name.text) && binder.table[call.name.text] == nil { break }
            bind(call)
        case .expression(let expression):
            check(expression)
        case .letBinding(let name, let value):
            check(value)
            scopes[scopes.count - 1].insert(name.text)
        case .assignment(let name, let value):
            check(value)
            if !isDefined(name.text) {
                diagnostics.append(.assignmentToUndefined(name.text, file: file, range: name.range))
            }
        case .ifElse(let branches, let elseBlock):
            for branch in branches {
                check(branch.condition)
                walkBlock(branch.block)
            }
            if let elseBlock { walkBlock(elseBlock) }
        case .forLoop(let name, let sequence, let body):
            check(sequence)
            walkBlock(body, defining: [name.text])
        case .recipe(let recipe):
            let saved = scopes
            scopes = [Set(recipe.parameters.map(\.name.text))]
            for parameter in recipe.parameters {
                if let value = parameter.defaultValue { check(value) }
            }
            walk(recipe.body.statements)
            scopes = saved
        case .use:
            break
        case .print(let values):
            values.forEach { check($0) }
        case .assert(let condition, let message):
            check(condition)
            if let message { check(message) }
        }
    }

    mutating func bind(_ call: CommandCall) {
        if case .failure(let list) = binder.bind(call, in: file, isVariable: { isDefined($0) }) {
            diagnostics += list.diagnostics
        }
        for argument in call.arguments {
            switch argument {
            case .positional(let value), .option(_, let value):
                if case .word = value.kind { continue }
                check(value)
            }
        }
    }

    mutating func check(_ expression: Expression) {
        switch expression.kind {
        case .number, .ratio, .bool, .none, .word:
            break
        case .string(let parts):
            for case .interpolation(let inner) in parts { check(inner) }
        case .variable(let name):
            if !isDefined(name) && binder.table[name] == nil {
                diagnostics.append(.undefinedVariable(name, suggestions: closeMatches(to: name, among: visibleNames), file: file, range: expression.range))
            }
        case .member(let base, _):
            check(base)
        case .index(let base, let position):
            check(base)
            check(position)
        case .list(let items):
            items.forEach { check($0) }
        case .unary(_, let operand):
            check(operand)
        case .binary(_, let left, let right):
            check(left)
            check(right)
        case .command(let call):
            bind(call)
        }
    }
}
