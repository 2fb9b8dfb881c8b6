/// Decorates the parts of a rendered diagnostic; plain and coloured output are interchangeable.
package protocol DiagnosticStyle: Sendable {
    func decorate(_ text: String, as role: DiagnosticRole) -> String
}

/// The parts of a rendered diagnostic a style may decorate.
package enum DiagnosticRole: Sendable {
    case error, warning, note, location, message, gutter, highlight, fixIt
}

/// No decoration.
package struct PlainStyle: DiagnosticStyle {
    package init() {}
    package func decorate(_ text: String, as role: DiagnosticRole) -> String { text }
}

/// ANSI colours, for a terminal (the caller decides, from isatty and NO_COLOR).
package struct ColorStyle: DiagnosticStyle {
    package init() {}
    package func decorate(_ text: String, as role: DiagnosticRole) -> String {
        let code: String
        switch role {
        case .error: code = "1;31"
        case .warning: code = "1;33"
        case .note: code = "1;36"
        case .location, .message: code = "1"
        case .gutter: code = "34"
        case .highlight: code = "1;32"
        case .fixIt: code = "32"
        }
        return "\u{1B}[\(code)m\(text)\u{1B}[0m"
    }
}

/// Renders diagnostics like a compiler:
///
///     recipe.qs:3:18: error: unknown option 'bit' for 'quantize'
///       3 | quantize layer.* bit=4 asym
///         |                  ^~~
///         = note: did you mean 'bits'?
package struct DiagnosticRenderer: Sendable {
    package var style: any DiagnosticStyle

    package init(style: any DiagnosticStyle = PlainStyle()) {
        self.style = style
    }

    /// The renderer for a terminal or not; colour only when asked.
    package init(color: Bool) {
        self.init(style: color ? ColorStyle() : PlainStyle())
    }

    /// All diagnostics, separated by blank lines, ending with a line break.
    package func render(_ diagnostics: [Diagnostic]) -> String {
        diagnostics.map(render).joined(separator: "\n")
    }

    /// One diagnostic with its source line, caret, notes and fix-its, ending with a line break.
    package func render(_ diagnostic: Diagnostic) -> String {
        let location = diagnostic.file.location(of: diagnostic.range.start)
        let notesWithPlaces = diagnostic.notes.compactMap { note in note.location.map { (note.message, $0.file, $0.range) } }
        let lines = [location.line] + notesWithPlaces.map { $0.1.location(of: $0.2.start).line }
        let gutterWidth = String(lines.max() ?? 1).count

        var output = header(diagnostic.file, location, severity: diagnostic.severity, message: diagnostic.message)
        output += excerpt(diagnostic.file, diagnostic.range, location: location, gutterWidth: gutterWidth)
        let pad = String(repeating: " ", count: gutterWidth + 1)
        for note in diagnostic.notes where note.location == nil {
            output += pad + style.decorate("=", as: .gutter) + " " + style.decorate("note:", as: .note) + " " + note.message + "\n"
        }
        for fixIt in diagnostic.fixIts {
            let original = diagnostic.file.text(fixIt.range)
            let action = original.isEmpty ? "insert '\(fixIt.replacement)'" : fixIt.replacement.isEmpty ? "remove '\(original)'" : "replace '\(original)' with '\(fixIt.replacement)'"
            output += pad + style.decorate("=", as: .gutter) + " " + style.decorate("fix:", as: .fixIt) + " " + action + "\n"
        }
        for (message, file, range) in notesWithPlaces {
            let noteLocation = file.location(of: range.start)
            output += header(file, noteLocation, severity: .note, message: message)
            output += excerpt(file, range, location: noteLocation, gutterWidth: gutterWidth)
        }
        return output
    }

    private func header(_ file: SourceFile, _ location: SourceLocation, severity: Diagnostic.Severity, message: String) -> String {
        let role: DiagnosticRole = severity == .error ? .error : severity == .warning ? .warning : .note
        return style.decorate("\(file.name):\(location.line):\(location.column):", as: .location) + " "
            + style.decorate("\(severity.rawValue):", as: role) + " " + style.decorate(message, as: .message) + "\n"
    }

    /// The source line in a numbered gutter, and a caret with tildes under the range (cut at the
    /// end of the line).
    private func excerpt(_ file: SourceFile, _ range: SourceRange, location: SourceLocation, gutterWidth: Int) -> String {
        let line = file.lineRange(containing: range.start)
        let text = file.text(line).map { $0 == "\t" ? " " : $0 }
        let number = String(location.line)
        let gutter = String(repeating: " ", count: gutterWidth - number.count) + number
        let blank = String(repeating: " ", count: gutterWidth)
        let underlineEnd = min(range.end, line.end)
        let width = underlineEnd > range.start ? file.characterCount(file.bytes[range.start..<underlineEnd]) : 1
        let marker = "^" + String(repeating: "~", count: max(0, width - 1))
        return style.decorate(gutter + " |", as: .gutter) + (text.isEmpty ? "" : " " + String(text)) + "\n"
            + style.decorate(blank + " |", as: .gutter) + " " + String(repeating: " ", count: location.column - 1)
            + style.decorate(marker, as: .highlight) + "\n"
    }
}
