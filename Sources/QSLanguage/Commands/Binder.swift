/// A command call matched against its spec: which expression fills which argument, and which
/// flags are set. Values that are not literals are checked again when the interpreter has them.
package struct BoundCommand: Sendable, Equatable {
    package var spec: CommandSpec
    package var call: CommandCall
    /// The arguments given, positionals first, in the order of the spec.
    package var arguments: [BoundArgument]
    /// The flags given, as written.
    package var flags: [Name]

    /// The argument given for `name`, if any.
    package func argument(_ name: String) -> BoundArgument? {
        arguments.first { $0.spec.name == name }
    }
}

/// One argument of a bound command.
package struct BoundArgument: Sendable, Equatable {
    package var spec: ArgumentSpec
    package var value: Expression
    /// Where the whole argument (`key=value` or the value) was written.
    package var range: SourceRange
}

/// Checks command calls against a command table: unknown commands and options (with
/// "did you mean"), missing and surplus arguments, flags, and the types, ranges and allowed
/// values of literal arguments.
package struct Binder: Sendable {
    package var table: CommandTable

    package init(table: CommandTable) {
        self.table = table
    }

    /// Binds a call. `isVariable` says whether a bare word names a variable in scope (then it is a
    /// value whose type is known only at run time) — except a word that names one of the
    /// command's flags, which is always the flag (such a variable is passed by name).
    package func bind(
        _ call: CommandCall, in file: SourceFile, isVariable: (String) -> Bool = { _ in false }
    ) -> Result<BoundCommand, DiagnosticList> {
        guard let spec = table[call.name.text] else {
            return .failure(DiagnosticList([.unknownCommand(call.name.text, suggestions: closeMatches(to: call.name.text, among: table.names), file: file, range: call.name.range)]))
        }
        var diagnostics: [Diagnostic] = []
        var given: [String: BoundArgument] = [:]
        var flags: [Name] = []
        var nextPositional = 0

        func literalShape(_ expression: Expression) -> ValueShape? {
            switch expression.kind {
            case .number(let value, _): return .number(value)
            case .ratio(let a, let b): return .ratio(a, b)
            case .bool(let value): return .bool(value)
            case .none: return ValueShape.none
            case .string(let parts):
                var text = ""
                for part in parts {
                    guard case .text(let piece) = part else { return nil }
                    text += piece
                }
                return .string(text)
            case .word(let word):
                let root = word.split(separator: ".", maxSplits: 1).first.map(String.init) ?? word
                return isVariable(root) ? nil : .word(word)
            case .unary(.negate, let operand):
                if case .number(let value, _) = operand.kind { return .number(-value) }
                return nil
            case .list(let items):
                var shapes: [ValueShape] = []
                for item in items {
                    guard let shape = literalShape(item) else { return nil }
                    shapes.append(shape)
                }
                return .list(shapes)
            default: return nil
            }
        }

        func give(_ argumentSpec: ArgumentSpec, _ value: Expression, range: SourceRange) {
            if let previous = given[argumentSpec.name] {
                diagnostics.append(.duplicateArgument(argumentSpec.name, command: spec.name, file: file, range: range).noting("first given here", file: file, range: previous.range))
                return
            }
            given[argumentSpec.name] = BoundArgument(spec: argumentSpec, value: value, range: range)
            if let shape = literalShape(value), let problem = argumentSpec.check(shape) {
                diagnostics.append(.badValue(problem, argument: argumentSpec.name, command: spec.name, file: file, range: value.range))
            }
        }

        for argument in call.arguments {
            switch argument {
            case .option(let key, let value):
                if let option = spec.argument(named: key.text) {
                    give(option, value, range: argument.range)
                } else if spec.flags.contains(where: { $0.name == key.text }) {
                    diagnostics.append(.flagWithValue(key.text, file: file, range: argument.range).fixing(argument.range, with: key.text))
                } else {
                    let names = spec.options.map(\.name) + spec.positionals.map(\.name)
                    diagnostics.append(.unknownOption(key.text, command: spec.name, suggestions: closeMatches(to: key.text, among: names), valid: spec.options.map(\.name) + spec.positionals.map(\.name), file: file, range: key.range))
                }
            case .positional(let value):
                if case .word(let word) = value.kind, spec.flags.contains(where: { $0.name == word }) {
                    if flags.contains(where: { $0.text == word }) {
                        diagnostics.append(.duplicateFlag(word, file: file, range: value.range))
                    }
                    flags.append(Name(word, value.range))
                    continue
                }
                while nextPositional < spec.positionals.count, given[spec.positionals[nextPositional].name] != nil {
                    nextPositional += 1
                }
                if nextPositional < spec.positionals.count {
                    give(spec.positionals[nextPositional], value, range: value.range)
                    nextPositional += 1
                    continue
                }
                if case .word(let word) = value.kind, !isVariable(word) {
                    let suggestions = closeMatches(to: word, among: spec.flags.map(\.name))
                    if !suggestions.isEmpty || spec.positionals.isEmpty && !spec.flags.isEmpty {
                        diagnostics.append(.unknownFlag(word, command: spec.name, suggestions: suggestions, valid: spec.flags.map(\.name), file: file, range: value.range))
                        continue
                    }
                }
                diagnostics.append(.tooManyArguments(command: spec.name, expected: spec.positionals.count, usage: spec.usage, file: file, range: value.range))
            }
        }

        for (position, flag) in flags.enumerated() {
            guard let group = spec.flags.first(where: { $0.name == flag.text })?.group else { continue }
            if let earlier = flags[..<position].first(where: { other in
                other.text != flag.text && spec.flags.first(where: { $0.name == other.text })?.group == group
            }) {
                diagnostics.append(.conflictingFlags(flag.text, earlier.text, file: file, range: flag.range).noting("'\(earlier.text)' given here", file: file, range: earlier.range))
            }
        }
        for positional in spec.positionals where positional.isRequired && given[positional.name] == nil {
            diagnostics.append(.missingArgument(positional.name, type: positional.type, command: spec.name, usage: spec.usage, file: file, range: .at(call.range.end)))
        }
        if !diagnostics.isEmpty { return .failure(DiagnosticList(diagnostics)) }
        let ordered = (spec.positionals + spec.options).compactMap { given[$0.name] }
        return .success(BoundCommand(spec: spec, call: call, arguments: ordered, flags: flags))
    }
}
