/// What a positional argument or an option value may be, for completion.
package struct ArgumentKinds: OptionSet, Sendable, Hashable {
    package let rawValue: Int
    package init(rawValue: Int) { self.rawValue = rawValue }

    /// A file or folder: completed from the file system.
    package static let path = ArgumentKinds(rawValue: 1 << 0)
    /// A layer name or pattern: completed one dotted segment at a time from the loaded model.
    package static let layerPattern = ArgumentKinds(rawValue: 1 << 1)
    /// A model or text from the registry.
    package static let registryName = ArgumentKinds(rawValue: 1 << 2)
    /// A variable bound with `let`.
    package static let variable = ArgumentKinds(rawValue: 1 << 3)
}

/// The names the completer offers, answered by the interpreter's session from its command
/// table, its scopes and the loaded model. Every question has a default answer of "nothing",
/// so a source implements only what it knows.
package protocol CompletionSource {
    /// Words that may start a statement: built-in commands, recipes and keywords.
    var commandNames: [String] { get }
    /// The `key=value` options of a command, without the `=` (`bits`, `group`).
    func optionNames(command: String) -> [String]
    /// The bare-word flags of a command (`asym`, `sym`).
    func flagNames(command: String) -> [String]
    /// The allowed values of an option (`method` → `gptq`, `awq`, `rtn`); empty when free.
    func optionValues(command: String, option: String) -> [String]
    /// What the value of an option may be when it is not from a fixed list (a path for `file=`).
    func optionKinds(command: String, option: String) -> ArgumentKinds
    /// What the positional argument at `argumentIndex` (0 = first after the command) may be.
    func argumentKinds(command: String, argumentIndex: Int) -> ArgumentKinds
    /// Fixed words allowed as a positional argument (`eval` → `ppl`, `kl`; `help` → commands).
    func argumentWords(command: String, argumentIndex: Int) -> [String]
    /// The canonical layer names of the loaded model (`layer.0.attn.q`, `embed`); empty if none.
    var layerNames: [String] { get }
    /// Names in the model and text registry.
    var registryNames: [String] { get }
    /// Variables bound in the session.
    var variableNames: [String] { get }
}

extension CompletionSource {
    package var commandNames: [String] { [] }
    package func optionNames(command: String) -> [String] { [] }
    package func flagNames(command: String) -> [String] { [] }
    package func optionValues(command: String, option: String) -> [String] { [] }
    package func optionKinds(command: String, option: String) -> ArgumentKinds { [] }
    package func argumentKinds(command: String, argumentIndex: Int) -> ArgumentKinds { [] }
    package func argumentWords(command: String, argumentIndex: Int) -> [String] { [] }
    package var layerNames: [String] { [] }
    package var registryNames: [String] { [] }
    package var variableNames: [String] { [] }
}

/// Runs what the person typed. Implemented by the interpreter's session.
package protocol LineEvaluator {
    /// Runs one complete input (possibly several lines joined with "\n"), printing its own
    /// output and errors; never throws, the REPL stays up.
    func evaluate(_ source: String)
    /// False while the input cannot be complete yet: a brace or bracket is open or a string is
    /// unclosed. The REPL then reads more lines with the continuation prompt.
    func isComplete(_ source: String) -> Bool
}
