/// An error from the engine: what went wrong, and where (the file, and the tensor or key
/// when there is one). The interpreter adds the source range of the command that caused it.
package struct EngineError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file the error is about, when there is one.
    package var path: String?
    /// The tensor (or metadata key) the error is about, when there is one.
    package var subject: String?
    /// What went wrong and what was expected, as one sentence without a trailing period.
    package var message: String

    package init(path: String? = nil, subject: String? = nil, _ message: String) {
        self.path = path
        self.subject = subject
        self.message = message
    }

    /// Work stopped because the person asked (Ctrl-C).
    package static let cancelled = EngineError("cancelled")

    package var description: String {
        var text = ""
        if let path { text += "\(path): " }
        if let subject { text += "'\(subject)': " }
        return text + message
    }
}

/// qs's version, as `qs --version` prints it and qs.json records it.
package enum QSVersion {
    package static let number = "0.1.0"
}
