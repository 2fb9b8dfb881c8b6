import QSLanguage

/// A layer-name pattern: `*` matches any run of characters (dots included), `?` one character,
/// `[0-5]` (or `[1,3,8-11]`) a whole decimal number in the ranges; everything else matches
/// itself. `layer.*.mlp.*`, `layer.[0-5].*`, `embed`.
package struct Glob: Sendable, Equatable, CustomStringConvertible {
    package let pattern: String
    private let pieces: [Piece]

    enum Piece: Sendable, Equatable {
        case byte(UInt8)
        case anyOne
        case anyRun
        case number([ClosedRange<Int>])
    }

    /// Compiles a pattern; a malformed `[...]` group is an error.
    package init(_ pattern: String) throws(GlobError) {
        self.pattern = pattern
        var pieces: [Piece] = []
        let bytes = Array(pattern.utf8)
        var index = 0
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "*"):
                if pieces.last != .anyRun { pieces.append(.anyRun) }
                index += 1
            case UInt8(ascii: "?"):
                pieces.append(.anyOne)
                index += 1
            case UInt8(ascii: "["):
                guard let close = bytes[index...].firstIndex(of: UInt8(ascii: "]")) else {
                    throw GlobError(pattern: pattern, reason: "'[' is never closed")
                }
                let body = String(decoding: bytes[(index + 1)..<close], as: UTF8.self)
                pieces.append(.number(try Glob.ranges(body, pattern: pattern)))
                index = close + 1
            default:
                pieces.append(.byte(bytes[index]))
                index += 1
            }
        }
        self.pieces = pieces
    }

    private static func ranges(_ body: String, pattern: String) throws(GlobError) -> [ClosedRange<Int>] {
        var ranges: [ClosedRange<Int>] = []
        for item in body.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = item.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(bounds.count), let low = Int(bounds[0]), let high = Int(bounds.last!) else {
                throw GlobError(pattern: pattern, reason: "'[\(body)]' is not a number range like [0-5] or [1,3]")
            }
            guard low <= high else { throw GlobError(pattern: pattern, reason: "range [\(low)-\(high)] is empty") }
            ranges.append(low...high)
        }
        return ranges
    }

    package var description: String { pattern }

    /// Whether the whole name matches.
    package func matches(_ name: String) -> Bool {
        cost(Array(name.utf8), limit: 0) == 0
    }

    /// The fewest single-character edits to the name that make it match (at most `limit + 1`:
    /// anything above `limit` is reported as `limit + 1`). A dynamic programme over (piece,
    /// position), so no pattern backtracks exponentially.
    func cost(_ text: [UInt8], limit: Int) -> Int {
        let cap = limit + 1
        let width = text.count + 1
        var table = [Int](repeating: cap, count: (pieces.count + 1) * width)
        for position in 0...text.count { table[pieces.count * width + position] = min(cap, text.count - position) }
        for piece in stride(from: pieces.count - 1, through: 0, by: -1) {
            for position in stride(from: text.count, through: 0, by: -1) {
                let next = table[(piece + 1) * width + position]
                var best = min(cap, next + 1)
                if position < text.count {
                    best = min(best, table[piece * width + position + 1] + 1)
                }
                switch pieces[piece] {
                case .byte(let byte):
                    if position < text.count {
                        best = min(best, table[(piece + 1) * width + position + 1] + (text[position] == byte ? 0 : 1))
                    }
                case .anyOne:
                    if position < text.count { best = min(best, table[(piece + 1) * width + position + 1]) }
                case .anyRun:
                    best = min(best, next)
                    if position < text.count { best = min(best, table[piece * width + position + 1]) }
                case .number(let ranges):
                    var end = position
                    while end < text.count, text[end] >= UInt8(ascii: "0"), text[end] <= UInt8(ascii: "9") { end += 1 }
                    if end > position {
                        let inRange = Int(String(decoding: text[position..<end], as: UTF8.self)).map { value in ranges.contains { $0.contains(value) } } ?? false
                        best = min(best, table[(piece + 1) * width + end] + (inRange ? 0 : 1))
                    }
                }
                table[piece * width + position] = min(cap, best)
            }
        }
        return table[0]
    }

    /// The names that match, in their order; when none do, up to three names that come within a
    /// few edits of matching, closest first.
    package func match(_ names: [String]) -> GlobMatch {
        let matched = names.filter(matches)
        guard matched.isEmpty else { return GlobMatch(matched: matched, suggestions: []) }
        let literalCount = pieces.count { if case .byte = $0 { true } else { false } }
        let limit = min(3, max(2, literalCount / 4))
        let scored = names.map { ($0, cost(Array($0.utf8), limit: limit)) }.filter { $0.1 <= limit }
        let best = scored.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : false }.prefix(3).map(\.0)
        return GlobMatch(matched: [], suggestions: best)
    }
}

/// What a pattern matched among a list of names.
package struct GlobMatch: Sendable, Equatable {
    package var matched: [String]
    /// Close names, when nothing matched.
    package var suggestions: [String]
}

/// A malformed pattern.
package struct GlobError: Error, Sendable, Equatable, CustomStringConvertible {
    package var pattern: String
    package var reason: String
    package var description: String { "bad pattern '\(pattern)': \(reason)" }
}
