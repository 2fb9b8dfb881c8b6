extension CommandSpec {
    /// The text `help NAME` prints: usage, explanation, arguments, options, flags, result fields
    /// and examples.
    package var helpText: String {
        var lines = ["usage: \(usage)", "", summary]
        if !discussion.isEmpty { lines += ["", discussion] }
        func describe(_ argument: ArgumentSpec) -> String {
            var text = "  \(argument.name): \(argument.type)"
            if !argument.help.isEmpty { text += " — \(argument.help)" }
            var details: [String] = []
            if !argument.allowed.isEmpty { details.append("one of \(argument.allowed.joined(separator: ", "))") }
            if let range = argument.range { details.append("\(formatNumber(range.lowerBound))...\(formatNumber(range.upperBound))") }
            if let value = argument.defaultValue { details.append("default \(value)") }
            if argument.isRequired { details.append("required") }
            if !details.isEmpty { text += " (\(details.joined(separator: "; ")))" }
            return text
        }
        if !positionals.isEmpty { lines += ["", "arguments:"] + positionals.map(describe) }
        if !options.isEmpty { lines += ["", "options:"] + options.map(describe) }
        if !flags.isEmpty { lines += ["", "flags:"] + flags.map { "  \($0.name): \($0.help)" } }
        if !resultFields.isEmpty { lines += ["", "returns a record with:"] + resultFields.map { "  \($0.name): \($0.help)" } }
        if !examples.isEmpty { lines += ["", "examples:"] + examples.map { "  \($0)" } }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension CommandTable {
    /// The text plain `help` prints: every command with its one-line summary.
    package var summaryText: String {
        let width = commands.map(\.name.count).max() ?? 0
        return commands.map { command in
            command.name + String(repeating: " ", count: width - command.name.count + 2) + command.summary
        }.joined(separator: "\n") + "\n"
    }

    /// The command reference of docs/language.md, generated from the table.
    package var markdownReference: String {
        var text = "## Commands\n"
        for command in commands {
            text += "\n### `\(command.name)`\n\n\(command.summary)\n\n```\n\(command.usage)\n```\n"
            if !command.discussion.isEmpty { text += "\n\(command.discussion)\n" }
            let arguments = command.positionals.map { ($0, "argument") } + command.options.map { ($0, "option") }
            if !arguments.isEmpty {
                text += "\n| name | kind | type | default | allowed | help |\n|---|---|---|---|---|---|\n"
                for (argument, kind) in arguments {
                    var allowed = argument.allowed.joined(separator: ", ")
                    if let range = argument.range { allowed = "\(formatNumber(range.lowerBound))...\(formatNumber(range.upperBound))" }
                    let fallback = argument.defaultValue.map { "`\($0)`" } ?? (argument.isRequired ? "required" : "")
                    text += "| `\(argument.name)` | \(kind) | \(argument.type) | \(fallback) | \(allowed) | \(argument.help) |\n"
                }
            }
            if !command.flags.isEmpty {
                text += "\nFlags: " + command.flags.map { "`\($0.name)` (\($0.help))" }.joined(separator: ", ") + ".\n"
            }
            if !command.resultFields.isEmpty {
                text += "\nReturns: " + command.resultFields.map { "`\($0.name)` (\($0.help))" }.joined(separator: ", ") + ".\n"
            }
            if !command.examples.isEmpty {
                text += "\n```\n" + command.examples.joined(separator: "\n") + "\n```\n"
            }
        }
        return text
    }
}
