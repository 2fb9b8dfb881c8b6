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

    /// Diagnostics shown for one file before the rest are summed up in a line, as compilers do:
    /// a binary or garbled file must not print one screen per byte.
    package static let limitPerFile = 20
    /// The longest source line shown whole; a longer one is cut around the caret.
    package static let maxLineWidth = 160

    /// All diagnostics, separated by blank lines, ending with a line break; past `limitPerFile`
    /// for a file, one line says how many more there are.
    package func render(_ diagnostics: [Diagnostic]) -> String {
        var shown: [String: Int] = [:]
        var hidden: [(file: String, errors: Int, others: Int)] = []
        var parts: [String] = []
        for diagnostic in diagnostics {
            let name = diagnostic.file.name
            let count = shown[name, default: 0]
            if count < Self.limitPerFile {
                parts.append(render(diagnostic))
                shown[name] = count + 1
                continue
            }
            let isError = diagnostic.severity == .error
            if let index = hidden.firstIndex(where: { $0.file == name }) {
                if isError { hidden[index].errors += 1 } else { hidden[index].others += 1 }
            } else {
                hidden.append((name, isError ? 1 : 0, isError ? 0 : 1))
            }
        }
        for (file, errors, others) in hidden {
            var counts: [String] = []
            if errors > 0 { counts.append("\(errors) more error\(errors == 1 ? "" : "s")") }
            if others > 0 { counts.append("\(others) more warning\(others == 1 ? "" : "s") and note\(others == 1 ? "" : "s")") }
            parts.append(style.decorate("\(file):", as: .location) + " " + counts.joined(separator: " and ") + " not shown\n")
        }
        return parts.joined(separator: "\n")
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
    /// end of the line). A line longer than `maxLineWidth` is shown as the part around the caret,
    /// with `…` where it was cut.
    private func excerpt(_ file: SourceFile, _ range: SourceRange, location: SourceLocation, gutterWidth: Int) -> String {
        let line = file.lineRange(containing: range.start)
        var text = Array(file.text(line).unicodeScalars.map { $0 == "\t" ? " " : $0 })
        let number = String(location.line)
        let gutter = String(repeating: " ", count: gutterWidth - number.count) + number
        let blank = String(repeating: " ", count: gutterWidth)
        let underlineEnd = min(range.end, line.end)
        var width = underlineEnd > range.start ? file.characterCount(file.bytes[range.start..<underlineEnd]) : 1
        var column = location.column
        if text.count > Self.maxLineWidth {
            let window = Self.maxLineWidth - 2
            let first = max(0, min(column - 1 - window / 2, text.count - window))
            let last = min(text.count, first + window)
            text = (first > 0 ? ["…"] : []) + Array(text[first..<last]) + (last < text.count ? ["…"] : [])
            let caret = column - 1
            width = max(1, min(width, last - caret))
            column = caret - first + 1 + (first > 0 ? 1 : 0)
        }
        let marker = "^" + String(repeating: "~", count: max(0, width - 1))
        var shown = ""
        shown.unicodeScalars.append(contentsOf: text)
        return style.decorate(gutter + " |", as: .gutter) + (shown.isEmpty ? "" : " " + shown) + "\n"
            + style.decorate(blank + " |", as: .gutter) + " " + String(repeating: " ", count: max(0, column - 1))
            + style.decorate(marker, as: .highlight) + "\n"
    }
}
