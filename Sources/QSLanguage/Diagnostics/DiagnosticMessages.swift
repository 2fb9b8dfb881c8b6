/// Every message the language front end, the binder and the interpreter show, in one place.
extension Diagnostic {
    /// An error named after the factory that calls this (its `#function`).
    private static func error(_ message: String, _ file: SourceFile, _ range: SourceRange, function: String = #function) -> Diagnostic {
        Diagnostic(.error, message, file: file, range: range, id: DiagnosticID(function: function))
    }

    private static func quotedList(_ names: [String]) -> String {
        names.map { "'\($0)'" }.joined(separator: ", ")
    }

    private static func didYouMean(_ suggestions: [String]) -> String {
        suggestions.count == 1 ? "did you mean '\(suggestions[0])'?" : "did you mean one of \(quotedList(suggestions))?"
    }

    // MARK: Lexing

    package static func unexpectedCharacter(file: SourceFile, range: SourceRange) -> Diagnostic {
        let bytes = file.bytes[range.start..<range.end]
        if let text = String(validating: Array(bytes), as: UTF8.self) {
            return error("unexpected character '\(text)'", file, range)
        }
        let hex = bytes.map { "0x" + String($0, radix: 16, uppercase: true) }.joined(separator: " ")
        return error("invalid UTF-8 byte \(hex)", file, range)
    }

    package static func unterminatedString(file: SourceFile, range: SourceRange) -> Diagnostic {
        error("unterminated string", file, range).noting("a string ends with '\"' on the same line")
    }

    package static func invalidEscape(_ escape: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("unknown escape '\(escape)' in string", file, range)
            .noting("the escapes are \\n \\t \\r \\0 \\\\ \\\" \\{ \\}")
    }

    package static func invalidUTF8(file: SourceFile, range: SourceRange) -> Diagnostic {
        error("string is not valid UTF-8", file, range)
    }

    package static func unclosedInterpolation(file: SourceFile, range: SourceRange) -> Diagnostic {
        error("'{' in string is never closed", file, range).noting("write '\\{' for a literal brace")
    }

    package static func emptyInterpolation(file: SourceFile, range: SourceRange) -> Diagnostic {
        error("empty interpolation in string", file, range).noting("put an expression between the braces, or write '\\{' for a literal brace")
    }

    package static func badInterpolation(found: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("unexpected \(found) in string interpolation", file, range).noting("an interpolation holds one expression, like {r.ppl}")
    }

    package static func numberTooLarge(_ text: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("number '\(text)' is too large", file, range)
    }

    // MARK: Parsing

    package static func expected(_ what: String, found: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("expected \(what), found \(found)", file, range)
    }

    package static func expectedEndOfStatement(found: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("expected end of line, found \(found)", file, range).noting("put one statement on a line, or separate statements with ';'")
    }

    package static func expectedCommand(found: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("expected a command, found '\(found)'", file, range).noting("a line starts with a command name, like 'quantize \(found)'")
    }

    package static func nestingTooDeep(limit: Int, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("nesting is too deep (more than \(limit) levels)", file, range)
    }

    package static func importTooDeep(limit: Int, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("imports chain more than \(limit) files deep", file, range).noting("a file imported by a file imported by ... stops here; import the recipes from fewer levels")
    }

    package static func valueTooLarge(_ what: String, limit: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("this would make \(what); values are at most \(limit)", file, range)
    }

    package static func valueTooDeep(limit: Int, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("lists nest more than \(limit) deep here", file, range)
    }

    package static func stepLimitReached(_ limit: Int, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("the script ran more than \(limit) statements and was stopped", file, range)
    }

    package static func tooManyErrors(limit: Int, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("more than \(limit) errors: the rest of the file is not read", file, range)
    }

    package static func unmatchedClosingBrace(file: SourceFile, range: SourceRange) -> Diagnostic {
        error("'}' does not close any block", file, range)
    }

    package static func unclosedBlock(file: SourceFile, range: SourceRange) -> Diagnostic {
        error("expected '}' to close the block", file, range)
    }

    package static func unclosedDelimiter(_ closing: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("expected '\(closing)'", file, range)
    }

    package static func elseWithoutIf(file: SourceFile, range: SourceRange) -> Diagnostic {
        error("'else' without 'if'", file, range).noting("'else' follows the '}' of an 'if' block")
    }

    package static func assertWithoutCondition(file: SourceFile, range: SourceRange) -> Diagnostic {
        error("'assert' needs a condition", file, range).noting("write: assert r.ppl < 20, \"message\"")
    }

    package static func assignmentInCondition(file: SourceFile, range: SourceRange) -> Diagnostic {
        error("'=' assigns; use '==' to compare", file, range)
    }

    package static func chainedComparison(file: SourceFile, range: SourceRange) -> Diagnostic {
        error("comparisons cannot be chained", file, range).noting("join them with 'and': a < b and b < c")
    }

    package static func nestedRecipe(file: SourceFile, range: SourceRange) -> Diagnostic {
        error("a recipe must be defined at the top level of a file", file, range)
    }

    package static func duplicateParameter(_ name: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("parameter '\(name)' is declared twice", file, range)
    }

    package static func interpolatedImport(file: SourceFile, range: SourceRange) -> Diagnostic {
        error("the file name after 'use' cannot contain interpolations", file, range)
    }

    package static func missingOptionValue(_ name: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("option '\(name)' has no value", file, range).noting("write the value right after '=', as in \(name)=4")
    }

    package static func unexpectedBlock(command: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("'\(command)' does not take a block", file, range)
    }

    package static func optionOutsideCommand(file: SourceFile, range: SourceRange) -> Diagnostic {
        error("'key=value' options go after a command name", file, range)
    }

    // MARK: Binding

    package static func unknownCommand(_ name: String, suggestions: [String], file: SourceFile, range: SourceRange) -> Diagnostic {
        var diagnostic = error("unknown command '\(name)'", file, range)
        if !suggestions.isEmpty {
            diagnostic = diagnostic.noting(didYouMean(suggestions)).fixing(range, with: suggestions[0])
        }
        return diagnostic.noting("'help' lists the commands")
    }

    package static func unknownOption(_ name: String, command: String, suggestions: [String], valid: [String], file: SourceFile, range: SourceRange) -> Diagnostic {
        var diagnostic = error("unknown option '\(name)' for '\(command)'", file, range)
        if !suggestions.isEmpty {
            diagnostic = diagnostic.noting(didYouMean(suggestions)).fixing(range, with: suggestions[0])
        }
        return diagnostic.noting(valid.isEmpty ? "'\(command)' takes no options" : "'\(command)' takes \(quotedList(valid))")
    }

    package static func unknownFlag(_ name: String, command: String, suggestions: [String], valid: [String], file: SourceFile, range: SourceRange) -> Diagnostic {
        var diagnostic = error("unknown flag '\(name)' for '\(command)'", file, range)
        if !suggestions.isEmpty {
            diagnostic = diagnostic.noting(didYouMean(suggestions)).fixing(range, with: suggestions[0])
        }
        return diagnostic.noting(valid.isEmpty ? "'\(command)' takes no flags" : "the flags are \(quotedList(valid))")
    }

    package static func flagWithValue(_ name: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("flag '\(name)' takes no value", file, range).noting("write just '\(name)'")
    }

    package static func duplicateFlag(_ name: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("flag '\(name)' is given twice", file, range)
    }

    package static func duplicateArgument(_ name: String, command: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("'\(name)' is given twice to '\(command)'", file, range)
    }

    package static func conflictingFlags(_ name: String, _ other: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("flag '\(name)' conflicts with '\(other)'", file, range)
    }

    package static func tooManyArguments(command: String, expected: Int, usage: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        let count = expected == 0 ? "no positional arguments" : expected == 1 ? "1 positional argument" : "\(expected) positional arguments"
        return error("too many arguments: '\(command)' takes \(count)", file, range).noting("usage: \(usage)")
    }

    package static func missingArgument(_ name: String, type: ValueType, command: String, usage: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        let what = type == .any ? "'\(name)'" : "'\(name)' (\(type))"
        return error("missing argument \(what) for '\(command)'", file, range).noting("usage: \(usage)")
    }

    package static func badValue(_ problem: ValueProblem, argument: String, command: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        switch problem {
        case .wrongType(let expected, let found):
            let shown: String =
                switch found {
                case .record, .none, .list: found.kindName
                default: "'\(found.shown)' (\(found.kindName))"
                }
            return error("'\(argument)' of '\(command)' expects \(expected), found \(shown)", file, range)
        case .notInteger(let value):
            return error("'\(argument)' of '\(command)' expects an integer, found \(formatNumber(value))", file, range)
        case .outOfRange(let value, let range_):
            return error("'\(argument)' of '\(command)' is \(formatNumber(value)), out of range", file, range)
                .noting("it must be between \(formatNumber(range_.lowerBound)) and \(formatNumber(range_.upperBound))")
        case .notAllowed(let value, let allowed):
            var diagnostic = error("'\(value)' is not a valid '\(argument)' for '\(command)'", file, range)
            let suggestions = closeMatches(to: value, among: allowed)
            if !suggestions.isEmpty {
                diagnostic = diagnostic.noting(didYouMean(suggestions)).fixing(range, with: suggestions[0])
            }
            return diagnostic.noting("allowed values: \(allowed.joined(separator: ", "))")
        }
    }

    package static func undefinedVariable(_ name: String, suggestions: [String], file: SourceFile, range: SourceRange) -> Diagnostic {
        var diagnostic = error("undefined variable '\(name)'", file, range)
        if !suggestions.isEmpty {
            diagnostic = diagnostic.noting(didYouMean(suggestions)).fixing(range, with: suggestions[0])
        } else {
            diagnostic = diagnostic.noting("define it with 'let \(name) = ...', or quote it to use the word: \"\(name)\"")
        }
        return diagnostic
    }

    package static func assignmentToUndefined(_ name: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("cannot assign to undefined variable '\(name)'", file, range).noting("define it first with 'let \(name) = ...'")
    }

    package static func recipeRedefined(_ name: String, file: SourceFile, range: SourceRange, previous: (SourceFile, SourceRange)?) -> Diagnostic {
        let diagnostic = error("recipe '\(name)' is already defined", file, range)
        guard let previous else { return diagnostic.noting("'\(name)' is a built-in command") }
        return diagnostic.noting("first defined here", file: previous.0, range: previous.1)
    }

    // MARK: Imports

    package static func importNotFound(_ name: String, searched: [String], file: SourceFile, range: SourceRange) -> Diagnostic {
        error("cannot find '\(name)' to import", file, range).noting("looked for \(searched.joined(separator: ", "))")
    }

    package static func importCycle(_ chain: [String], file: SourceFile, range: SourceRange) -> Diagnostic {
        error("import cycle: \(chain.joined(separator: " -> "))", file, range)
    }

    package static func importFailed(_ name: String, reason: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("cannot read '\(name)': \(reason)", file, range)
    }

    // MARK: Running

    package static func typeMismatch(_ message: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error(message, file, range)
    }

    package static func operandTypes(_ op: String, _ left: String, _ right: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("'\(op)' cannot combine \(left) and \(right)", file, range)
    }

    package static func operandType(_ op: String, expected: String, found: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("'\(op)' expects \(expected), found \(found)", file, range)
    }

    package static func conditionNotBool(_ found: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("condition must be true or false, found \(found)", file, range)
    }

    package static func divisionByZero(file: SourceFile, range: SourceRange) -> Diagnostic {
        error("division by zero", file, range)
    }

    package static func noSuchField(_ field: String, fields: [String], file: SourceFile, range: SourceRange) -> Diagnostic {
        var diagnostic = error("the record has no field '\(field)'", file, range)
        let suggestions = closeMatches(to: field, among: fields)
        if !suggestions.isEmpty { diagnostic = diagnostic.noting(didYouMean(suggestions)).fixing(range, with: suggestions[0]) }
        return diagnostic.noting(fields.isEmpty ? "the record is empty" : "its fields are \(quotedList(fields))")
    }

    package static func notARecord(_ field: String, found: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("cannot read field '\(field)' of \(found)", file, range)
    }

    package static func indexOutOfRange(_ index: Int, count: Int, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("index \(index) is out of range for a list of \(count)", file, range)
    }

    package static func notIterable(_ found: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("'for' needs a list, found \(found)", file, range)
    }

    package static func assertionFailed(_ message: String?, file: SourceFile, range: SourceRange) -> Diagnostic {
        error(message.map { "assertion failed: \($0)" } ?? "assertion failed", file, range)
    }

    package static func recursionTooDeep(_ recipe: String, limit: Int, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("recipe calls nest too deep: '\(recipe)' at depth \(limit)", file, range).noting("a recipe that calls itself needs a condition that stops it")
    }

    package static func commandFailed(_ command: String, reason: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("\(command): \(reason)", file, range)
    }

    package static func argumentFailed(_ argument: String, command: String, reason: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        error("\(command): '\(argument)': \(reason)", file, range)
    }

    package static func recipeFailedHere(_ recipe: String, file: SourceFile, range: SourceRange) -> Note {
        Note("in recipe '\(recipe)' called here", file: file, range: range, id: .recipeFailedHere)
    }

    package static func unknownSetting(_ name: String, suggestions: [String], file: SourceFile, range: SourceRange) -> Diagnostic {
        var diagnostic = error("unknown setting '\(name)'", file, range)
        if !suggestions.isEmpty { diagnostic = diagnostic.noting(didYouMean(suggestions)) }
        return diagnostic
    }

    package static func unknownHelpTopic(_ name: String, suggestions: [String], file: SourceFile, range: SourceRange) -> Diagnostic {
        var diagnostic = error("no help for '\(name)': not a command", file, range)
        if !suggestions.isEmpty { diagnostic = diagnostic.noting(didYouMean(suggestions)) }
        return diagnostic
    }

    // MARK: While a command runs

    /// Something a command wants the person to know while it still completes: a text with
    /// invalid UTF-8, a tokenizer that could not be read.
    package static func commandWarning(_ command: String, _ message: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        Diagnostic(.warning, "\(command): \(message)", file: file, range: range, id: DiagnosticID(function: #function))
    }

    /// A remark about how a command ran (a text shorter than asked for).
    package static func commandNote(_ command: String, _ message: String, file: SourceFile, range: SourceRange) -> Diagnostic {
        Diagnostic(.note, "\(command): \(message)", file: file, range: range, id: DiagnosticID(function: #function))
    }
}

extension DiagnosticID {
    /// The identities code reacts to; DiagnosticIdentityTests checks that each is its factory's.
    package static let unterminatedString = DiagnosticID("unterminatedString")
    package static let recipeFailedHere = DiagnosticID("recipeFailedHere")
    package static let commandWarning = DiagnosticID("commandWarning")
    package static let commandNote = DiagnosticID("commandNote")
}
