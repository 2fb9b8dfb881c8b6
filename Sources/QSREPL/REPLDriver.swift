import QSInterpreter

/// Starts the interactive REPL over a script runner's session; returns the exit status.
package enum REPLDriver {
    package static func run(runner: ScriptRunner) -> Int32 {
        0
    }
}
