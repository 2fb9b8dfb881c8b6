import Foundation

/// The interactive loop: reads lines with the line editor, gathers continuation lines until the
/// input is complete, runs it through the evaluator, and handles the colon commands.
package final class REPL {
    package let evaluator: any LineEvaluator
    package let completion: any CompletionSource
    package let historyPath: String
    package let prompt: String
    package let continuationPrompt: String

    package init(
        evaluator: any LineEvaluator, completion: any CompletionSource, historyPath: String,
        prompt: String = "qs> ", continuationPrompt: String = "...> "
    ) {
        self.evaluator = evaluator
        self.completion = completion
        self.historyPath = historyPath
        self.prompt = prompt
        self.continuationPrompt = continuationPrompt
    }

    /// The history file: `$QS_HOME/history`, or `~/.cache/qs/history` when QS_HOME is unset.
    package static func defaultHistoryPath(environment: [String: String] = ProcessInfo.processInfo.environment)
        -> String
    {
        if let home = environment["QS_HOME"], !home.isEmpty {
            return (home as NSString).appendingPathComponent("history")
        }
        return (NSHomeDirectory() as NSString).appendingPathComponent(".cache/qs/history")
    }

    /// What `:help` prints.
    package static let helpText = """
        Type a command and press Enter; `help` lists the commands, `help NAME` explains one.
        An input with an open brace or string continues on the next line (prompt ...>).
          Tab         complete; a second Tab lists the choices
          Up/Down     previous/next line from the history
          Ctrl-R      search the history backwards as you type
          Ctrl-A/E    start/end of line      Ctrl-K/U  delete to end/whole line
          Ctrl-C      clear the line; while a command runs, stop it after the current layer
          Ctrl-D      quit (on an empty line)
          :help       this text
          :history    the lines typed so far (kept in the history file)
          :quit       quit

        """

    /// Runs until `:quit`, Ctrl-D or the end of input.
    package func run() {
        setlocale(LC_CTYPE, "")
        Cancellation.install()
        let editor = LineEditor(historyPath: historyPath, prompt: prompt)
        let completer = Completer(source: completion)
        var tab = TabCompletion()
        editor.tabHandler = { line, cursor in
            tab.press(line: line, cursor: cursor, result: completer.complete(line: line, cursor: cursor))
        }
        var pending: [String] = []
        while true {
            editor.prompt = pending.isEmpty ? prompt : continuationPrompt
            // Cleared at the prompt, not when the command starts: a Ctrl-C pressed just after
            // Enter, before the command is under way, still cancels it.
            Cancellation.reset()
            let line: String
            switch editor.readLine() {
            case .endOfInput:
                if isatty(STDIN_FILENO) != 0 { output("\n") }
                editor.saveHistory()
                return
            case .interrupted:
                pending = []
                output("\n")
                continue
            case .line(let text):
                line = text
            }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if pending.isEmpty && trimmed.isEmpty { continue }
            editor.addToHistory(line)
            if pending.isEmpty, trimmed.hasPrefix(":") {
                switch trimmed {
                case ":quit", ":q":
                    return
                case ":help":
                    output(Self.helpText)
                case ":history":
                    let entries = editor.historyEntries
                    let width = String(entries.count).count
                    for (number, entry) in entries.enumerated() {
                        let label = String(number + 1)
                        output(String(repeating: " ", count: width - label.count) + label + "  " + entry + "\n")
                    }
                default:
                    output("unknown command '\(trimmed)'; try :help\n")
                }
                continue
            }
            pending.append(line)
            let source = pending.joined(separator: "\n")
            guard evaluator.isComplete(source) else { continue }
            pending = []
            evaluator.evaluate(source)
        }
    }

    private func output(_ text: String) {
        print(text, terminator: "")
        fflush(nil)
    }
}
