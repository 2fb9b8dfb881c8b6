/// A name as written, with where it was written.
package struct Name: Sendable, Equatable {
    package var text: String
    package var range: SourceRange

    package init(_ text: String, _ range: SourceRange) {
        self.text = text
        self.range = range
    }
}

/// An expression and the source it covers.
package struct Expression: Sendable, Equatable {
    package var kind: Kind
    package var range: SourceRange

    package init(_ kind: Kind, _ range: SourceRange) {
        self.kind = kind
        self.range = range
    }

    /// The forms of an expression.
    package indirect enum Kind: Sendable, Equatable {
        /// A number; a percentage is stored as its fraction (`30%` is 0.3, `isPercent` true).
        case number(Double, isPercent: Bool)
        /// A ratio of integers: `2:4`.
        case ratio(Int, Int)
        /// A string with `{expr}` interpolations.
        case string([StringPart])
        /// `true` or `false`.
        case bool(Bool)
        /// `none`.
        case none
        /// A bare word: a path, a glob, or (as a command argument) a name that is not a variable.
        case word(String)
        /// A variable, by name.
        case variable(String)
        /// A field of a record: `r.ppl`.
        case member(Expression, Name)
        /// An element of a list: `xs[0]`.
        case index(Expression, Expression)
        /// A list: `[8, 4, 3]`.
        case list([Expression])
        /// `-x` or `not x`.
        case unary(UnaryOperator, Expression)
        /// `a + b`, `a < b`, `a and b`, ...
        case binary(BinaryOperator, Expression, Expression)
        /// A command used for its result: `let r = eval ppl shakespeare`.
        case command(CommandCall)
    }
}

/// A piece of a string literal.
package enum StringPart: Sendable, Equatable {
    /// Text, escapes decoded.
    case text(String)
    /// An `{expr}` interpolation.
    case interpolation(Expression)
}

/// Prefix operators; the raw value is the spelling.
package enum UnaryOperator: String, Sendable, Equatable {
    case negate = "-"
    case not = "not"
}

/// Infix operators; the raw value is the spelling.
package enum BinaryOperator: String, Sendable, Equatable, CaseIterable {
    case or, and
    case equal = "==", notEqual = "!=", less = "<", lessEqual = "<=", greater = ">", greaterEqual = ">="
    case add = "+", subtract = "-", multiply = "*", divide = "/"

    /// Binding strength: higher binds tighter.
    package var precedence: Int {
        switch self {
        case .or: 1
        case .and: 2
        case .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual: 3
        case .add, .subtract: 4
        case .multiply, .divide: 5
        }
    }
}

/// A command call: a name, then positional arguments, `key=value` options and flags, to the end
/// of the line.
package struct CommandCall: Sendable, Equatable {
    package var name: Name
    package var arguments: [Argument]
    package var range: SourceRange

    package init(name: Name, arguments: [Argument], range: SourceRange) {
        self.name = name
        self.arguments = arguments
        self.range = range
    }
}

/// One argument of a command as written; whether a bare word is a flag or a positional is
/// decided by the binder, which knows the command.
package enum Argument: Sendable, Equatable {
    /// A value without a key (a positional or, if it is a bare word naming one, a flag).
    case positional(Expression)
    /// `key=value`.
    case option(Name, Expression)

    package var range: SourceRange {
        switch self {
        case .positional(let value): value.range
        case .option(let key, let value): key.range.union(value.range)
        }
    }
}

/// A statement and the source it covers.
package struct Statement: Sendable, Equatable {
    package var kind: Kind
    package var range: SourceRange

    package init(_ kind: Kind, _ range: SourceRange) {
        self.kind = kind
        self.range = range
    }

    /// The forms of a statement.
    package indirect enum Kind: Sendable, Equatable {
        /// A command run for its effect.
        case command(CommandCall)
        /// `let name = value`: a new variable in the current scope.
        case letBinding(Name, Expression)
        /// `name = value`: changes the nearest variable of that name.
        case assignment(Name, Expression)
        /// `if c { } else if d { } else { }`.
        case ifElse([ConditionalBlock], elseBlock: Block?)
        /// `for x in list { }`.
        case forLoop(Name, Expression, Block)
        /// `recipe name(a, b=4) { }`: a new command.
        case recipe(RecipeDeclaration)
        /// `use "file.qs"` or `use name` (from the standard library).
        case use(ImportTarget)
        /// `print a b ...`.
        case print([Expression])
        /// `assert condition, "message"`.
        case assert(Expression, message: Expression?)
        /// An expression on its own line (`r.ppl`, `n * 2`): its value is the statement's value,
        /// which the REPL shows.
        case expression(Expression)
    }
}

/// A condition and the block it guards.
package struct ConditionalBlock: Sendable, Equatable {
    package var condition: Expression
    package var block: Block
}

/// Statements in braces, with their own scope.
package struct Block: Sendable, Equatable {
    package var statements: [Statement]
    /// From the `{` to the `}`.
    package var range: SourceRange
}

/// A recipe: a command written in .qs.
package struct RecipeDeclaration: Sendable, Equatable {
    package var name: Name
    package var parameters: [Parameter]
    package var body: Block
}

/// A recipe parameter, with its default when it has one.
package struct Parameter: Sendable, Equatable {
    package var name: Name
    package var defaultValue: Expression?
}

/// What `use` imports.
package enum ImportTarget: Sendable, Equatable {
    /// `use "path/file.qs"`, relative to the importing file.
    case file(String, SourceRange)
    /// `use int4`: `stdlib/int4.qs`.
    case library(Name)

    package var range: SourceRange {
        switch self {
        case .file(_, let range): range
        case .library(let name): name.range
        }
    }
}

/// A parsed file.
package struct SourceUnit: Sendable, Equatable {
    package var file: SourceFile
    package var statements: [Statement]
}
