/// What one press of Tab does to the line.
package enum TabAction: Equatable, Sendable {
    /// Insert this text at the cursor.
    case insert(String)
    /// Show these candidates below the line, then redraw it.
    case list([String])
    /// Nothing matches, or the match is ambiguous on a first press: ring the bell.
    case beep
}

/// Turns completion results into Tab behaviour: a first Tab inserts what all candidates share;
/// a second Tab on the same, unchanged line lists them.
package struct TabCompletion: Sendable {
    /// The line and cursor left by the previous Tab, to recognise a second press.
    private var lastState: String?

    package init() {}

    /// Decides what a Tab does on `line` with the cursor at `cursor` (UTF-8 offset), given the
    /// completer's `result` for it.
    package mutating func press(line: String, cursor: Int, result: CompletionResult) -> TabAction {
        let state = Self.key(line: line, cursor: cursor)
        guard !result.candidates.isEmpty else {
            lastState = nil
            return .beep
        }
        let insertion = result.insertion
        if !insertion.isEmpty {
            let utf8 = line.utf8
            let split = utf8.index(utf8.startIndex, offsetBy: min(max(cursor, 0), utf8.count))
            let after = String(line[..<split]) + insertion + String(line[split...])
            lastState = Self.key(line: after, cursor: cursor + insertion.utf8.count)
            return .insert(insertion)
        }
        defer { lastState = state }
        return lastState == state ? .list(result.candidates.map(\.display)) : .beep
    }

    private static func key(line: String, cursor: Int) -> String { "\(cursor)\u{0}\(line)" }
}

/// Lays out candidates in columns, down then across, the way shells list completions.
package enum CandidateColumns {
    /// The listing for `items` on a terminal `width` columns wide, each row ending in "\n".
    package static func format(_ items: [String], width: Int) -> String {
        guard !items.isEmpty else { return "" }
        let cell = (items.map(\.count).max() ?? 0) + 2
        let columns = max(1, min(items.count, max(width, 1) / cell))
        let rows = (items.count + columns - 1) / columns
        var text = ""
        for row in 0..<rows {
            var line = ""
            for column in 0..<columns {
                let index = column * rows + row
                guard index < items.count else { break }
                let item = items[index]
                let isLast = column == columns - 1 || (column + 1) * rows + row >= items.count
                line += isLast ? item : item + String(repeating: " ", count: cell - item.count)
            }
            text += line + "\n"
        }
        return text
    }
}
