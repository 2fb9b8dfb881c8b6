import Foundation

/// A one-line progress display on standard error, drawn only when standard error is a
/// terminal (quiet in pipes, logs and CI). Redraws at most ten times a second.
package final class ProgressBar {
    private let label: String
    private let unit: String
    private let enabled: Bool
    private let start = Date()
    private var lastDraw = Date.distantPast

    package init(label: String, unit: String, enabled: Bool = isatty(2) != 0) {
        self.label = label
        self.unit = unit
        self.enabled = enabled
    }

    /// Shows `done` of `total`, with `detail` (a loss, a rate) after the counts.
    package func update(_ done: Int, of total: Int, detail: String = "") {
        guard enabled else { return }
        let now = Date()
        guard done >= total || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        let width = 30
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        let filled = Int(fraction * Double(width))
        let elapsed = now.timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let left = rate > 0 ? Double(total - done) / rate : 0
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        let line = "\(label) [\(bar)] \(done)/\(total) \(unit)  \(fixed1(rate)) \(unit)/s  \(Int(left.rounded()))s left\(detail.isEmpty ? "" : "  " + detail)"
        FileHandle.standardError.write(Data(("\r" + line + "\u{1B}[K").utf8))
    }

    /// Clears the line.
    package func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
