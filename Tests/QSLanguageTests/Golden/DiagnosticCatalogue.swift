import Testing
@testable import QSLanguage

/// Mistakes a person makes in .qs files, each with the whole text `qs check` prints for it.
/// The main file is `main.qs`; other files are what it imports.
enum DiagnosticCatalogue {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var files: [String: String]
        var expected: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "unknown command",
            files: ["main.qs": #"load smollm2-135m\#nloda smollm2-135m\#n"#],
            expected: #"""
            main.qs:2:1: error: unknown command 'loda'
            2 | loda smollm2-135m
              | ^~~~
              = note: did you mean 'load'?
              = note: 'help' lists the commands
              = fix: replace 'loda' with 'load'

            """#),
        Case(
            name: "unknown option",
            files: ["main.qs": #"quantize layer.*.mlp.* bit=4 asym\#n"#],
            expected: #"""
            main.qs:1:24: error: unknown option 'bit' for 'quantize'
            1 | quantize layer.*.mlp.* bit=4 asym
              |                        ^~~
              = note: did you mean 'bits'?
              = note: 'quantize' takes 'bits', 'group', 'method', 'pattern'
              = fix: replace 'bit' with 'bits'

            """#),
        Case(
            name: "unknown flag",
            files: ["main.qs": #"quantize layer.* bits=4 asm\#n"#],
            expected: #"""
            main.qs:1:25: error: unknown flag 'asm' for 'quantize'
            1 | quantize layer.* bits=4 asm
              |                         ^~~
              = note: did you mean 'asym'?
              = note: the flags are 'sym', 'asym'
              = fix: replace 'asm' with 'asym'

            """#),
        Case(
            name: "wrong type",
            files: ["main.qs": #"quantize layer.* bits=four\#n"#],
            expected: #"""
            main.qs:1:23: error: 'bits' of 'quantize' expects an integer, found 'four' (a word)
            1 | quantize layer.* bits=four
              |                       ^~~~

            """#),
        Case(
            name: "not an integer",
            files: ["main.qs": #"quantize layer.* bits=4.5\#n"#],
            expected: #"""
            main.qs:1:23: error: 'bits' of 'quantize' expects an integer, found 4.5
            1 | quantize layer.* bits=4.5
              |                       ^~~

            """#),
        Case(
            name: "out of range",
            files: ["main.qs": #"quantize layer.* bits=9\#n"#],
            expected: #"""
            main.qs:1:23: error: 'bits' of 'quantize' is 9, out of range
            1 | quantize layer.* bits=9
              |                       ^
              = note: it must be between 2 and 8

            """#),
        Case(
            name: "percentage out of range",
            files: ["main.qs": #"prune global 130%\#n"#],
            expected: #"""
            main.qs:1:14: error: 'amount' of 'prune' is 1.3, out of range
            1 | prune global 130%
              |              ^~~~
              = note: it must be between 0 and 1

            """#),
        Case(
            name: "value not allowed",
            files: ["main.qs": #"save out/smollm2 format=gguf2\#n"#],
            expected: #"""
            main.qs:1:25: error: 'gguf2' is not a valid 'format' for 'save'
            1 | save out/smollm2 format=gguf2
              |                         ^~~~~
              = note: did you mean 'gguf'?
              = note: allowed values: hf, gptq, gguf
              = fix: replace 'gguf2' with 'gguf'

            """#),
        Case(
            name: "positional not allowed",
            files: ["main.qs": #"prune globl 30%\#n"#],
            expected: #"""
            main.qs:1:7: error: 'globl' is not a valid 'scope' for 'prune'
            1 | prune globl 30%
              |       ^~~~~
              = note: did you mean 'global'?
              = note: allowed values: global, layer
              = fix: replace 'globl' with 'global'

            """#),
        Case(
            name: "missing positional",
            files: ["main.qs": #"load\#n"#],
            expected: #"""
            main.qs:1:5: error: missing argument 'model' (a path) for 'load'
            1 | load
              |     ^
              = note: usage: load MODEL

            """#),
        Case(
            name: "too many arguments",
            files: ["main.qs": #"load smollm2-135m minilm-l6\#n"#],
            expected: #"""
            main.qs:1:19: error: too many arguments: 'load' takes 1 positional argument
            1 | load smollm2-135m minilm-l6
              |                   ^~~~~~~~~
              = note: usage: load MODEL

            """#),
        Case(
            name: "conflicting flags",
            files: ["main.qs": #"quantize layer.* sym bits=4 asym\#n"#],
            expected: #"""
            main.qs:1:29: error: flag 'asym' conflicts with 'sym'
            1 | quantize layer.* sym bits=4 asym
              |                             ^~~~
            main.qs:1:18: note: 'sym' given here
            1 | quantize layer.* sym bits=4 asym
              |                  ^~~

            """#),
        Case(
            name: "flag with a value",
            files: ["main.qs": #"quantize layer.* asym=true\#n"#],
            expected: #"""
            main.qs:1:18: error: flag 'asym' takes no value
            1 | quantize layer.* asym=true
              |                  ^~~~~~~~~
              = note: write just 'asym'
              = fix: replace 'asym=true' with 'asym'

            """#),
        Case(
            name: "option given twice",
            files: ["main.qs": #"quantize layer.* bits=4 bits=8\#n"#],
            expected: #"""
            main.qs:1:25: error: 'bits' is given twice to 'quantize'
            1 | quantize layer.* bits=4 bits=8
              |                         ^~~~~~
            main.qs:1:18: note: first given here
            1 | quantize layer.* bits=4 bits=8
              |                  ^~~~~~

            """#),
        Case(
            name: "wrong type for a ratio",
            files: ["main.qs": #"mix pattern=2\#n"#],
            expected: #"""
            main.qs:1:13: error: 'pattern' of 'mix' expects a ratio like 2:4, found '2' (a number)
            1 | mix pattern=2
              |             ^

            """#),
        Case(
            name: "unclosed brace",
            files: ["main.qs": #"for b in [8, 4] {\#n    quantize layer.* bits=b\#n"#],
            expected: #"""
            main.qs:3:1: error: expected '}' to close the block
            3 |
              | ^
            main.qs:1:17: note: '{' opened here
            1 | for b in [8, 4] {
              |                 ^

            """#),
        Case(
            name: "unmatched closing brace",
            files: ["main.qs": #"prune global 30%\#n}\#n"#],
            expected: #"""
            main.qs:2:1: error: '}' does not close any block
            2 | }
              | ^

            """#),
        Case(
            name: "unclosed string",
            files: ["main.qs": #"print "ppl is {1 + 1}\#nsave out/x\#n"#],
            expected: #"""
            main.qs:1:7: error: unterminated string
            1 | print "ppl is {1 + 1}
              |       ^~~~~~~~~~~~~~~
              = note: a string ends with '"' on the same line

            """#),
        Case(
            name: "unclosed interpolation",
            files: ["main.qs": #"let r = eval ppl\#nprint "ppl {r.ppl"\#n"#],
            expected: #"""
            main.qs:2:12: error: '{' in string is never closed
            2 | print "ppl {r.ppl"
              |            ^
              = note: write '\{' for a literal brace

            """#),
        Case(
            name: "empty interpolation",
            files: ["main.qs": #"print "ppl {}"\#n"#],
            expected: #"""
            main.qs:1:12: error: empty interpolation in string
            1 | print "ppl {}"
              |            ^~
              = note: put an expression between the braces, or write '\{' for a literal brace

            """#),
        Case(
            name: "bad interpolation",
            files: ["main.qs": #"let r = eval ppl\#nprint "ppl {r.ppl r}"\#n"#],
            expected: #"""
            main.qs:2:19: error: unexpected 'r' in string interpolation
            2 | print "ppl {r.ppl r}"
              |                   ^
              = note: an interpolation holds one expression, like {r.ppl}

            """#),
        Case(
            name: "unknown escape",
            files: ["main.qs": #"print "a\qb"\#n"#],
            expected: #"""
            main.qs:1:9: error: unknown escape '\q' in string
            1 | print "a\qb"
              |         ^~
              = note: the escapes are \n \t \r \0 \\ \" \{ \}

            """#),
        Case(
            name: "undefined variable",
            files: ["main.qs": #"let base = eval ppl shakespeare\#nassert bsae.ppl < 20, "too high"\#n"#],
            expected: #"""
            main.qs:2:8: error: undefined variable 'bsae'
            2 | assert bsae.ppl < 20, "too high"
              |        ^~~~
              = note: did you mean 'base'?
              = fix: replace 'bsae' with 'base'

            """#),
        Case(
            name: "assignment to undefined variable",
            files: ["main.qs": #"count = 3\#n"#],
            expected: #"""
            main.qs:1:1: error: cannot assign to undefined variable 'count'
            1 | count = 3
              | ^~~~~
              = note: define it first with 'let count = ...'

            """#),
        Case(
            name: "wrong recipe option",
            files: ["main.qs": #"recipe int4(pattern, bits=4) {\#n    quantize pattern bits=bits asym\#n}\#nint4 layer.* bitz=3\#n"#],
            expected: #"""
            main.qs:4:14: error: unknown option 'bitz' for 'int4'
            4 | int4 layer.* bitz=3
              |              ^~~~
              = note: did you mean 'bits'?
              = note: 'int4' takes 'pattern', 'bits'
              = fix: replace 'bitz' with 'bits'

            """#),
        Case(
            name: "missing recipe argument",
            files: ["main.qs": #"recipe int4(pattern, bits=4) {\#n    quantize pattern bits=bits\#n}\#nint4\#n"#],
            expected: #"""
            main.qs:4:5: error: missing argument 'pattern' for 'int4'
            4 | int4
              |     ^
              = note: usage: int4 PATTERN [BITS]

            """#),
        Case(
            name: "too many recipe arguments",
            files: ["main.qs": #"recipe int4(pattern, bits=4) {\#n    quantize pattern bits=bits\#n}\#nint4 layer.* 4 32\#n"#],
            expected: #"""
            main.qs:4:16: error: too many arguments: 'int4' takes 2 positional arguments
            4 | int4 layer.* 4 32
              |                ^~
              = note: usage: int4 PATTERN [BITS]

            """#),
        Case(
            name: "import cycle",
            files: ["main.qs": #"use "a.qs"\#n"#, "a.qs": #"use "b.qs"\#n"#, "b.qs": #"use "a.qs"\#n"#],
            expected: #"""
            b.qs:1:5: error: import cycle: a.qs -> b.qs -> a.qs
            1 | use "a.qs"
              |     ^~~~~~

            """#),
        Case(
            name: "import not found",
            files: ["main.qs": #"use "recipes/missing.qs"\#n"#],
            expected: #"""
            main.qs:1:5: error: cannot find 'recipes/missing.qs' to import
            1 | use "recipes/missing.qs"
              |     ^~~~~~~~~~~~~~~~~~~~
              = note: looked for recipes/missing.qs

            """#),
        Case(
            name: "else without if",
            files: ["main.qs": #"prune global 30%\#nelse {\#n}\#n"#],
            expected: #"""
            main.qs:2:1: error: 'else' without 'if'
            2 | else {
              | ^~~~
              = note: 'else' follows the '}' of an 'if' block

            """#),
        Case(
            name: "assignment in condition",
            files: ["main.qs": #"let bits = 4\#nif bits = 4 {\#n    print bits\#n}\#n"#],
            expected: #"""
            main.qs:2:9: error: '=' assigns; use '==' to compare
            2 | if bits = 4 {
              |         ^
              = fix: replace '=' with '=='

            """#),
        Case(
            name: "chained comparison",
            files: ["main.qs": #"assert 1 < 2 < 3\#n"#],
            expected: #"""
            main.qs:1:14: error: comparisons cannot be chained
            1 | assert 1 < 2 < 3
              |              ^
              = note: join them with 'and': a < b and b < c
            main.qs:1:10: note: first comparison here
            1 | assert 1 < 2 < 3
              |          ^

            """#),
        Case(
            name: "option without value",
            files: ["main.qs": #"quantize layer.* bits= 4\#n"#],
            expected: #"""
            main.qs:1:18: error: option 'bits' has no value
            1 | quantize layer.* bits= 4
              |                  ^~~~~
              = note: write the value right after '=', as in bits=4

            """#),
        Case(
            name: "path where a command goes",
            files: ["main.qs": #"out/model format=gptq\#n"#],
            expected: #"""
            main.qs:1:1: error: expected a command, found 'out/model'
            1 | out/model format=gptq
              | ^~~~~~~~~
              = note: a line starts with a command name, like 'quantize out/model'

            """#),
        Case(
            name: "number too large",
            files: ["main.qs": #"prune global 1e999\#n"#],
            expected: #"""
            main.qs:1:14: error: number '1e999' is too large
            1 | prune global 1e999
              |              ^~~~~

            """#),
        Case(
            name: "recipe inside a block",
            files: ["main.qs": #"if true {\#n    recipe inner() {\#n    }\#n}\#n"#],
            expected: #"""
            main.qs:2:5: error: a recipe must be defined at the top level of a file
            2 |     recipe inner() {
              |     ^~~~~~

            """#),
        Case(
            name: "duplicate parameter",
            files: ["main.qs": #"recipe f(a, a) {\#n}\#n"#],
            expected: #"""
            main.qs:1:13: error: parameter 'a' is declared twice
            1 | recipe f(a, a) {
              |             ^

            """#),
        Case(
            name: "unexpected character",
            files: ["main.qs": #"quantize layer.* bits=4 @\#n"#],
            expected: #"""
            main.qs:1:25: error: unexpected character '@'
            1 | quantize layer.* bits=4 @
              |                         ^

            """#),
        Case(
            name: "two statements on a line",
            files: ["main.qs": #"let x = 3 4\#n"#],
            expected: #"""
            main.qs:1:11: error: expected end of line, found '4'
            1 | let x = 3 4
              |           ^
              = note: put one statement on a line, or separate statements with ';'

            """#),
        Case(
            name: "recipe shadows a command",
            files: ["main.qs": #"recipe load(x) {\#n}\#n"#],
            expected: #"""
            main.qs:1:8: error: recipe 'load' is already defined
            1 | recipe load(x) {
              |        ^~~~
              = note: 'load' is a built-in command

            """#),
        Case(
            name: "assert without condition",
            files: ["main.qs": #"assert\#n"#],
            expected: #"""
            main.qs:1:1: error: 'assert' needs a condition
            1 | assert
              | ^~~~~~
              = note: write: assert r.ppl < 20, "message"

            """#),
        Case(
            name: "unclosed parenthesis",
            files: ["main.qs": #"let x = (1 + 2\#n"#],
            expected: #"""
            main.qs:2:1: error: expected ')', found end of input
            2 |
              | ^
            main.qs:1:9: note: '(' opened here
            1 | let x = (1 + 2
              |         ^

            """#),
        Case(
            name: "let without a name",
            files: ["main.qs": #"let = 3\#n"#],
            expected: #"""
            main.qs:1:5: error: expected a name after 'let', found '='
            1 | let = 3
              |     ^

            """#),
        Case(
            name: "recipe defined twice",
            files: ["main.qs": #"use "lib.qs"\#nrecipe int4(p) {\#n}\#n"#, "lib.qs": #"recipe int4(p) {\#n    quantize p bits=4\#n}\#n"#],
            expected: #"""
            lib.qs:1:8: error: recipe 'int4' is already defined
            1 | recipe int4(p) {
              |        ^~~~
            main.qs:2:8: note: first defined here
            2 | recipe int4(p) {
              |        ^~~~

            """#),
        Case(
            name: "recovery reports every error",
            files: ["main.qs": #"loda x\#nquantize layer.* bit=4\#nprune global 2\#nsave\#n"#],
            expected: #"""
            main.qs:1:1: error: unknown command 'loda'
            1 | loda x
              | ^~~~
              = note: did you mean 'load'?
              = note: 'help' lists the commands
              = fix: replace 'loda' with 'load'

            main.qs:2:18: error: unknown option 'bit' for 'quantize'
            2 | quantize layer.* bit=4
              |                  ^~~
              = note: did you mean 'bits'?
              = note: 'quantize' takes 'bits', 'group', 'method', 'pattern'
              = fix: replace 'bit' with 'bits'

            main.qs:3:14: error: 'amount' of 'prune' is 2, out of range
            3 | prune global 2
              |              ^
              = note: it must be between 0 and 1

            main.qs:4:5: error: missing argument 'path' (a path) for 'save'
            4 | save
              |     ^
              = note: usage: save PATH [format=hf|gptq|gguf]

            """#),
    ]
}
