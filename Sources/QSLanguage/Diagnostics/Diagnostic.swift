/// What a diagnostic or a note is, apart from its wording: code that reacts to a particular
/// diagnostic compares identities, never messages. The factories in DiagnosticMessages.swift
/// give each message the name of its factory (`unterminatedString`).
package struct DiagnosticID: Hashable, Sendable, CustomStringConvertible {
    package let rawValue: String

    package init(_ rawValue: String) { self.rawValue = rawValue }

    /// The identity of a factory from its `#function` (`unterminatedString(file:range:)`).
    init(function: String) {
        rawValue = function.firstIndex(of: "(").map { String(function[..<$0]) } ?? function
    }

    package var description: String { rawValue }

    /// A diagnostic made without a factory.
    package static let unspecified = DiagnosticID("unspecified")
}

/// A problem found in a .qs source: what, where, and what might help. Line and column are
/// computed only when the diagnostic is rendered.
package struct Diagnostic: Error, Sendable, Equatable {
    /// How serious a diagnostic is.
    package enum Severity: String, Sendable, Equatable {
        case error, warning, note
    }

    /// Extra information under a diagnostic, optionally pointing at another place.
    package struct Note: Sendable, Equatable {
        package var id: DiagnosticID
        package var message: String
        /// Where the note points; nil for a note about the whole diagnostic.
        package var location: (file: SourceFile, range: SourceRange)?

        package init(_ message: String, file: SourceFile? = nil, range: SourceRange? = nil, id: DiagnosticID = .unspecified) {
            self.id = id
            self.message = message
            if let file, let range { location = (file, range) } else { location = nil }
        }

        package static func == (lhs: Note, rhs: Note) -> Bool {
            lhs.id == rhs.id && lhs.message == rhs.message && lhs.location?.file.name == rhs.location?.file.name
                && lhs.location?.range == rhs.location?.range
        }
    }

    /// A suggested edit: replace `range` with `replacement`.
    package struct FixIt: Sendable, Equatable {
        package var range: SourceRange
        package var replacement: String

        package init(replace range: SourceRange, with replacement: String) {
            self.range = range
            self.replacement = replacement
        }
    }

    package var id: DiagnosticID
    package var severity: Severity
    package var message: String
    package var file: SourceFile
    package var range: SourceRange
    package var notes: [Note]
    package var fixIts: [FixIt]

    package init(
        _ severity: Severity = .error, _ message: String, file: SourceFile, range: SourceRange,
        notes: [Note] = [], fixIts: [FixIt] = [], id: DiagnosticID = .unspecified
    ) {
        self.id = id
        self.severity = severity
        self.message = message
        self.file = file
        self.range = file.clamp(range)
        self.notes = notes
        self.fixIts = fixIts
    }

    /// The same diagnostic with one more note.
    package func noting(_ message: String, file: SourceFile? = nil, range: SourceRange? = nil) -> Diagnostic {
        var copy = self
        copy.notes.append(Note(message, file: file, range: range))
        return copy
    }

    /// The same diagnostic with a suggested replacement.
    package func fixing(_ range: SourceRange, with replacement: String) -> Diagnostic {
        var copy = self
        copy.fixIts.append(FixIt(replace: range, with: replacement))
        return copy
    }

    /// The 1-based line and column where the diagnostic starts.
    package var location: SourceLocation { file.location(of: range.start) }
}

/// A list of diagnostics thrown as one error (a file that does not parse, or a failed run).
package struct DiagnosticList: Error, Sendable, Equatable {
    package var diagnostics: [Diagnostic]

    package init(_ diagnostics: [Diagnostic]) {
        self.diagnostics = diagnostics
    }
}
