/// A named piece of .qs source text (a file, a REPL line, or a `-e` argument).
package struct SourceFile: Sendable, Equatable {
    /// The name shown in diagnostics: a path, `<repl>` or `<command line>`.
    package var name: String
    /// The text, as UTF-8 bytes.
    package var bytes: [UInt8]

    package init(name: String, text: String) {
        self.name = name
        self.bytes = Array(text.utf8)
    }
}
