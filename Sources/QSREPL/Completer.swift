import Foundation

/// One thing the completer offers for the word under the cursor.
package struct CompletionCandidate: Equatable, Sendable {
    /// The full text that replaces the word (`bits=`, `layer.1.attn.`, `~/models/`).
    package var text: String
    /// How the candidate is shown in a listing (`gptq` for `method=gptq`, `attn.` for a layer).
    package var display: String
    /// Whether the candidate ends the word: a space follows when it is the only one.
    package var isFinal: Bool

    package init(text: String, display: String? = nil, isFinal: Bool) {
        self.text = text
        self.display = display ?? text
        self.isFinal = isFinal
    }
}

/// What the completer found for the word before the cursor.
package struct CompletionResult: Equatable, Sendable {
    /// The word being completed, as it stands in the line before the cursor.
    package var word: String
    /// The candidates, each starting with `word`, sorted and without duplicates.
    package var candidates: [CompletionCandidate]

    /// The longest prefix all candidates share (at least `word` when there are any).
    package var commonPrefix: String {
        guard var prefix = candidates.first?.text else { return word }
        for candidate in candidates.dropFirst() {
            prefix = String(prefix.commonPrefix(with: candidate.text))
        }
        return prefix
    }

    /// The text to insert at the cursor: the rest of the only candidate (and a space if it ends
    /// the word), or what the candidates share beyond the word.
    package var insertion: String {
        if candidates.count == 1, let only = candidates.first {
            return String(only.text.dropFirst(word.count)) + (only.isFinal ? " " : "")
        }
        return String(commonPrefix.dropFirst(word.count))
    }
}

/// Completes the word before the cursor from a `CompletionSource` and the file system. Pure
/// apart from listing folders, so it is tested with tables.
package struct Completer {
    /// The REPL's own commands, offered as the first word.
    package static let colonCommands = [":help", ":history", ":quit"]

    package let source: any CompletionSource
    /// Where `~` points when listing; kept as `~` in the line.
    package var homeDirectory: String
    /// Where relative paths are listed from.
    package var workingDirectory: String

    package init(
        source: any CompletionSource,
        homeDirectory: String = NSHomeDirectory(),
        workingDirectory: String = FileManager.default.currentDirectoryPath
    ) {
        self.source = source
        self.homeDirectory = homeDirectory
        self.workingDirectory = workingDirectory
    }

    /// Completes the word that ends at `cursor`, an offset in UTF-8 bytes into `line` (libedit's
    /// unit). Text after the cursor is ignored.
    package func complete(line: String, cursor: Int) -> CompletionResult {
        let utf8 = line.utf8
        let end = utf8.index(utf8.startIndex, offsetBy: min(max(cursor, 0), utf8.count))
        return complete(beforeCursor: String(line[..<end]))
    }

    /// Completes the last word of `text`, the part of the line before the cursor.
    package func complete(beforeCursor text: String) -> CompletionResult {
        let (tokens, word) = Self.split(text)
        let statement = Self.statementTokens(tokens)
        var candidates: [CompletionCandidate]
        if let command = statement.first {
            candidates = argumentCandidates(command: command, arguments: Array(statement.dropFirst()), word: word)
        } else {
            candidates = firstWordCandidates()
        }
        candidates = candidates.filter { $0.text.hasPrefix(word) }
        var seen = Set<String>()
        candidates = candidates.filter { seen.insert($0.text).inserted }
        candidates.sort { Self.naturalLess($0.text, $1.text) }
        return CompletionResult(word: word, candidates: candidates)
    }

    private func firstWordCandidates() -> [CompletionCandidate] {
        (source.commandNames + Self.colonCommands).map { CompletionCandidate(text: $0, isFinal: true) }
    }

    private func argumentCandidates(command: String, arguments: [String], word: String) -> [CompletionCandidate] {
        if command.hasPrefix(":") { return [] }
        let flags = source.flagNames(command: command)
        if let equals = word.firstIndex(of: "=") {
            let option = String(word[..<equals])
            let prefix = String(word[...equals])
            let partial = String(word[word.index(after: equals)...])
            let values = source.optionValues(command: command, option: option)
            return valueCandidates(
                prefix: prefix, partial: partial, kinds: source.optionKinds(command: command, option: option),
                words: values)
        }
        let given = Set(arguments.map { $0.split(separator: "=", maxSplits: 1).first.map(String.init) ?? $0 })
        let index = arguments.filter { !$0.contains("=") && !flags.contains($0) }.count
        let kinds = source.argumentKinds(command: command, argumentIndex: index)
        if word.hasPrefix("\"") {
            return kinds.contains(.path)
                ? pathCandidates(prefix: "\"", partial: String(word.dropFirst()), closing: "\"") : []
        }
        if kinds.contains(.path) && Self.looksLikePath(word) {
            return pathCandidates(prefix: "", partial: word, closing: "")
        }
        var candidates = valueCandidates(
            prefix: "", partial: word, kinds: kinds, words: source.argumentWords(command: command, argumentIndex: index)
        )
        candidates += source.optionNames(command: command).filter { !given.contains($0) }.map {
            CompletionCandidate(text: $0 + "=", isFinal: false)
        }
        candidates += flags.filter { !given.contains($0) }.map { CompletionCandidate(text: $0, isFinal: true) }
        return candidates
    }

    /// Candidates for a value that follows `prefix` (`""` for a positional argument, `key=` for
    /// an option): fixed words, then whatever `kinds` allows.
    private func valueCandidates(prefix: String, partial: String, kinds: ArgumentKinds, words: [String])
        -> [CompletionCandidate]
    {
        var candidates = words.map { CompletionCandidate(text: prefix + $0, display: $0, isFinal: true) }
        if kinds.contains(.registryName) {
            candidates += source.registryNames.map {
                CompletionCandidate(text: prefix + $0, display: $0, isFinal: true)
            }
        }
        if kinds.contains(.variable) {
            candidates += source.variableNames.map {
                CompletionCandidate(text: prefix + $0, display: $0, isFinal: true)
            }
        }
        if kinds.contains(.layerPattern) {
            candidates += Self.layerCandidates(partial: partial, names: source.layerNames).map {
                CompletionCandidate(text: prefix + $0.text, display: $0.display, isFinal: $0.isFinal)
            }
        }
        if kinds.contains(.path) {
            candidates += pathCandidates(prefix: prefix, partial: partial, closing: "")
        }
        return candidates
    }

    /// Files and folders that complete `partial`; folders end in `/` and leave the word open.
    private func pathCandidates(prefix: String, partial: String, closing: String) -> [CompletionCandidate] {
        if partial == "~" {
            return [CompletionCandidate(text: prefix + "~/", display: "~/", isFinal: false)]
        }
        let slash = partial.lastIndex(of: "/")
        let folder = slash.map { String(partial[...$0]) } ?? ""
        let namePrefix = slash.map { String(partial[partial.index(after: $0)...]) } ?? partial
        var listed: String
        if folder.hasPrefix("~/") {
            listed = homeDirectory + "/" + folder.dropFirst(2)
        } else if folder.hasPrefix("/") {
            listed = folder
        } else {
            listed = workingDirectory + "/" + folder
        }
        if listed.isEmpty { listed = "/" }
        let manager = FileManager.default
        guard let entries = try? manager.contentsOfDirectory(atPath: listed) else { return [] }
        return entries.compactMap { name in
            guard name.hasPrefix(namePrefix), namePrefix.hasPrefix(".") || !name.hasPrefix(".") else { return nil }
            var isFolder: ObjCBool = false
            let exists = manager.fileExists(
                atPath: (listed as NSString).appendingPathComponent(name), isDirectory: &isFolder)
            if exists && isFolder.boolValue {
                return CompletionCandidate(text: prefix + folder + name + "/", display: name + "/", isFinal: false)
            }
            return CompletionCandidate(text: prefix + folder + name + closing, display: name, isFinal: true)
        }
    }

    /// Layer names completed one dotted segment at a time: `layer.1.a` → `layer.1.attn.`; after a
    /// glob (`layer.*.`) the next segment is offered from every name the glob reaches.
    static func layerCandidates(partial: String, names: [String]) -> [CompletionCandidate] {
        let dot = partial.lastIndex(of: ".")
        let head = dot.map { String(partial[...$0]) } ?? ""
        let segment = dot.map { String(partial[partial.index(after: $0)...]) } ?? partial
        if segment.contains(where: Glob.isSpecial) { return [] }
        let globbed = head.contains(where: Glob.isSpecial)
        var candidates: [CompletionCandidate] = []
        for name in names {
            if !globbed {
                guard name.hasPrefix(partial) else { continue }
                let rest = name.dropFirst(partial.count)
                if let next = rest.firstIndex(of: ".") {
                    let text = partial + rest[...next]
                    candidates.append(CompletionCandidate(text: text, display: segment + rest[...next], isFinal: false))
                } else {
                    candidates.append(CompletionCandidate(text: name, display: segment + rest, isFinal: true))
                }
                continue
            }
            let pattern = Glob(head)
            var start = name.startIndex
            while let dotInName = name[start...].firstIndex(of: ".") {
                let after = name.index(after: dotInName)
                if pattern.matches(name[..<after]) {
                    let rest = name[after...]
                    let next = rest.firstIndex(of: ".")
                    let nextSegment = next.map { rest[..<$0] } ?? rest
                    if nextSegment.hasPrefix(segment) {
                        let more = next != nil
                        candidates.append(
                            CompletionCandidate(
                                text: head + nextSegment + (more ? "." : ""), display: nextSegment + (more ? "." : ""),
                                isFinal: !more))
                    }
                }
                start = after
            }
        }
        return candidates
    }

    /// Splits the text before the cursor into the finished words and the word being typed.
    /// Whitespace inside double quotes does not split.
    static func split(_ text: String) -> (tokens: [String], word: String) {
        var tokens: [String] = []
        var current = ""
        var quoted = false
        for character in text {
            if character == "\"" { quoted.toggle() }
            if character.isWhitespace && !quoted {
                if !current.isEmpty { tokens.append(current) }
                current = ""
            } else {
                current.append(character)
            }
        }
        return (tokens, current)
    }

    /// The tokens of the statement the cursor is in: what follows the last `{`, `}` or `=` (so
    /// `let r = eval ppl` completes `eval`'s arguments).
    static func statementTokens(_ tokens: [String]) -> ArraySlice<String> {
        if let last = tokens.lastIndex(where: { $0 == "{" || $0 == "}" || $0 == "=" }) {
            return tokens[(last + 1)...]
        }
        return tokens[...]
    }

    static func looksLikePath(_ word: String) -> Bool {
        word.contains("/") || word.hasPrefix("~") || word.hasPrefix(".")
    }

    /// Orders names so that numbers in them compare by value (`layer.2.` before `layer.10.`).
    static func naturalLess(_ a: String, _ b: String) -> Bool {
        var i = a.unicodeScalars.makeIterator()
        var j = b.unicodeScalars.makeIterator()
        var x = i.next()
        var y = j.next()
        while let p = x, let q = y {
            if ("0"..."9").contains(p) && ("0"..."9").contains(q) {
                var m = ""
                var n = ""
                while let c = x, ("0"..."9").contains(c) {
                    m.unicodeScalars.append(c)
                    x = i.next()
                }
                while let c = y, ("0"..."9").contains(c) {
                    n.unicodeScalars.append(c)
                    y = j.next()
                }
                if m.count != n.count { return m.count < n.count }
                if m != n { return m < n }
                continue
            }
            if p != q { return p.value < q.value }
            x = i.next()
            y = j.next()
        }
        return x == nil && y != nil
    }
}

/// A layer pattern as the language writes it: `*` matches any run of characters (dots
/// included), `?` one character, `[0-5]` a number in a range or `[abc]` one of some characters.
struct Glob {
    private enum Piece {
        case literal(Character)
        case any, one
        case range(ClosedRange<Int>)
        case set(Set<Character>)
    }
    private let pieces: [Piece]

    static func isSpecial(_ character: Character) -> Bool { "*?[".contains(character) }

    init(_ pattern: String) {
        var pieces: [Piece] = []
        var index = pattern.startIndex
        while index < pattern.endIndex {
            let character = pattern[index]
            index = pattern.index(after: index)
            switch character {
            case "*": pieces.append(.any)
            case "?": pieces.append(.one)
            case "[":
                guard let close = pattern[index...].firstIndex(of: "]") else {
                    pieces.append(.literal("["))
                    continue
                }
                let body = pattern[index..<close]
                index = pattern.index(after: close)
                let bounds = body.split(separator: "-", maxSplits: 1).map { Int($0) }
                if bounds.count == 2, let low = bounds[0], let high = bounds[1], low <= high {
                    pieces.append(.range(low...high))
                } else {
                    pieces.append(.set(Set(body)))
                }
            default: pieces.append(.literal(character))
            }
        }
        self.pieces = pieces
    }

    func matches(_ text: Substring) -> Bool { Self.match(pieces[...], Array(text)[...]) }

    private static func match(_ pieces: ArraySlice<Piece>, _ text: ArraySlice<Character>) -> Bool {
        guard let piece = pieces.first else { return text.isEmpty }
        let rest = pieces.dropFirst()
        switch piece {
        case .literal(let character):
            return text.first == character && match(rest, text.dropFirst())
        case .one:
            return !text.isEmpty && match(rest, text.dropFirst())
        case .set(let characters):
            guard let first = text.first, characters.contains(first) else { return false }
            return match(rest, text.dropFirst())
        case .any:
            var tail = text
            while true {
                if match(rest, tail) { return true }
                if tail.isEmpty { return false }
                tail = tail.dropFirst()
            }
        case .range(let range):
            let digits = text.prefix { $0.isASCII && $0.isNumber }
            for length in stride(from: digits.count, to: 0, by: -1) {
                if let value = Int(String(digits.prefix(length))), range.contains(value),
                    match(rest, text.dropFirst(length))
                {
                    return true
                }
            }
            return false
        }
    }
}
