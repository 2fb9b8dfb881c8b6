import Foundation

/// Bars drawn with Unicode block characters beside a table in the terminal (`report quant`,
/// `report sparsity`, `sensitivity`). Coloured only when the session says its output is a
/// terminal without NO_COLOR; the characters are the same either way.
enum TerminalChart {
    /// Eighths of a cell, from none to seven.
    private static let eighths = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"]

    /// A bar of `value / maximum` of `width` cells, to an eighth of a cell; at least a sliver
    /// for any value above zero, so a small error is not shown as none.
    static func bar(_ value: Double, maximum: Double, width: Int = 24) -> String {
        guard value.isFinite, maximum > 0, value > 0 else { return value.isInfinite && value > 0 ? String(repeating: "█", count: width) : "" }
        let eighthsTotal = max(1, Int((min(value / maximum, 1) * Double(width * 8)).rounded()))
        return String(repeating: "█", count: eighthsTotal / 8) + eighths[eighthsTotal % 8]
    }

    /// `bar` in a colour (ANSI; `colour` false gives it plain).
    static func paint(_ bar: String, colour: Bool, code: String = "36") -> String {
        guard colour, !bar.isEmpty else { return bar }
        return "\u{1B}[\(code)m\(bar)\u{1B}[0m"
    }

    /// Appends a bar column to lines of an aligned table: `header` over the bars, one bar per
    /// data line (nil leaves a line as it is: a rule, a total).
    static func besides(_ lines: [String], header: String, bars: [String?], colour: Bool) -> [String] {
        let width = lines.map(\.count).max() ?? 0
        return lines.enumerated().map { index, line in
            let padded = line.padding(toLength: width, withPad: " ", startingAt: 0)
            if index == 0 { return padded + "  " + header }
            guard index - 1 < bars.count, let bar = bars[index - 1], !bar.isEmpty else { return line }
            return padded + "  " + paint(bar, colour: colour)
        }
    }
}
