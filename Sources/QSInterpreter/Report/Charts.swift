import Foundation

/// Inline SVG charts for the HTML report: a scatter with its Pareto front, horizontal bars,
/// lines and a map of blocks × layer types. Every chart has its axes (`g.axis`), axis labels
/// (`text.axis-label`), a legend where there is more than one kind of mark, and one element of
/// class `mark` per data point, each with a `<title>` saying what it is (a tooltip in a browser).
enum Charts {
    /// Okabe and Ito's palette, distinguishable with the common colour-vision deficiencies.
    static let palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000"]
    /// Viridis at nine stops (dark to light), a sequential scale readable in grey and by
    /// colour-blind readers.
    static let viridis: [(Double, Double, Double)] = [
        (68, 1, 84), (72, 40, 120), (62, 74, 137), (49, 104, 142), (38, 130, 142),
        (31, 158, 137), (53, 183, 121), (110, 206, 88), (253, 231, 37),
    ]

    /// The colour at `t` in 0...1 along viridis.
    static func sequential(_ t: Double) -> String {
        let t = min(1, max(0, t.isFinite ? t : 0)) * Double(viridis.count - 1)
        let i = min(Int(t), viridis.count - 2)
        let f = t - Double(i)
        let (a, b) = (viridis[i], viridis[i + 1])
        func c(_ x: Double, _ y: Double) -> Int { Int((x + (y - x) * f).rounded()) }
        return String(format: "#%02x%02x%02x", c(a.0, b.0), c(a.1, b.1), c(a.2, b.2))
    }

    /// Whether text on `t` of viridis should be white (the dark half) or black.
    static func textOnSequential(_ t: Double) -> String { t < 0.55 ? "#ffffff" : "#000000" }

    // MARK: Scales

    /// A map from data values to pixels, linear or logarithmic, with tick values.
    struct Scale {
        var low: Double
        var high: Double
        var start: Double
        var end: Double
        var log: Bool

        init(values: [Double], start: Double, end: Double, log: Bool = false, includeZero: Bool = false) {
            var finite = values.filter { $0.isFinite && (!log || $0 > 0) }
            if finite.isEmpty { finite = [log ? 1 : 0] }
            var low = finite.min()!, high = finite.max()!
            if includeZero && !log { low = min(low, 0); high = max(high, 0) }
            if log {
                low = Foundation.log10(low); high = Foundation.log10(high)
                if high - low < 1e-9 { low -= 0.5; high += 0.5 }
                let pad = (high - low) * 0.06
                low -= pad; high += pad
            } else {
                if high - low < 1e-12 { let d = Swift.max(abs(high) * 0.1, 1e-6); low -= d; high += d }
                let step = Scale.niceStep((high - low) / 5)
                if !(includeZero && low == 0) { low = (low / step).rounded(.down) * step }
                high = (high / step).rounded(.up) * step
            }
            (self.low, self.high, self.start, self.end, self.log) = (low, high, start, end, log)
        }

        func callAsFunction(_ value: Double) -> Double {
            let v = log ? Foundation.log10(Swift.max(value, 1e-300)) : value
            return start + (v - low) / (high - low) * (end - start)
        }

        static func niceStep(_ rough: Double) -> Double {
            guard rough > 0, rough.isFinite else { return 1 }
            let power = pow(10, (Foundation.log10(rough)).rounded(.down))
            let f = rough / power
            return power * (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10)
        }

        /// Tick values inside the range: powers of ten (and 2×, 5× when few decades) on a log
        /// scale, multiples of a 1-2-5 step on a linear one.
        var ticks: [Double] {
            if log {
                let decades = high - low
                var values: [Double] = []
                if decades >= 1.5 {
                    let multiples: [Double] = decades > 4 ? [1] : [1, 2, 5]
                    for p in Int(low.rounded(.down))...Int(high.rounded(.up)) {
                        for m in multiples { values.append(m * pow(10, Double(p))) }
                    }
                } else {
                    let a = pow(10, low), b = pow(10, high)
                    let step = Scale.niceStep((b - a) / 5)
                    var v = (a / step).rounded(.up) * step
                    while v <= b { values.append(v); v += step }
                }
                return values.filter { let l = Foundation.log10($0); return l >= low - 1e-9 && l <= high + 1e-9 }
            }
            let step = Scale.niceStep((high - low) / 5)
            var values: [Double] = []
            var v = (low / step).rounded(.up) * step
            while v <= high + step * 1e-9 { values.append(abs(v) < step * 1e-9 ? 0 : v); v += step }
            return values
        }
    }

    /// A tick label: few digits, no trailing zeros, exponents for the very large and small.
    static func tickLabel(_ v: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e5 || a < 1e-3 { return String(format: "%.0e", v).replacingOccurrences(of: "e+0", with: "e").replacingOccurrences(of: "e-0", with: "e-") }
        var s = String(format: a >= 100 ? "%.0f" : a >= 10 ? "%.1f" : a >= 1 ? "%.2f" : "%.3f", v)
        if s.contains(".") { while s.hasSuffix("0") { s.removeLast() }; if s.hasSuffix(".") { s.removeLast() } }
        return s
    }

    /// A number for a tooltip or cell: four significant digits.
    static func value(_ v: Double) -> String {
        guard v.isFinite else { return v > 0 ? "∞" : v < 0 ? "−∞" : "n/a" }
        return String(format: "%.4g", v)
    }

    // MARK: Pieces

    static func svg(_ kind: String, width: Double, height: Double, title: String, _ children: [Markup]) -> Markup {
        var svg = Markup("svg", [
            ("xmlns", "http://www.w3.org/2000/svg"), ("class", "chart"), ("data-kind", kind), ("role", "img"),
            ("width", fmt(width, 0)), ("height", fmt(height, 0)), ("viewBox", "0 0 \(fmt(width, 0)) \(fmt(height, 0))"),
        ])
        svg.add(Markup("title", text: title))
        svg.add(children)
        return svg
    }

    static func text(_ s: String, x: Double, y: Double, anchor: String = "start", cls: String, rotate: Bool = false, extra: [(String, String)] = []) -> Markup {
        var attributes = [("x", fmt(x, 1)), ("y", fmt(y, 1)), ("text-anchor", anchor), ("class", cls)]
        if rotate { attributes.append(("transform", "rotate(-90 \(fmt(x, 1)) \(fmt(y, 1)))")) }
        return Markup("text", attributes + extra, text: s)
    }

    static func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, cls: String) -> Markup {
        Markup("line", [("x1", fmt(x1, 1)), ("y1", fmt(y1, 1)), ("x2", fmt(x2, 1)), ("y2", fmt(y2, 1)), ("class", cls)])
    }

    /// A mark with its tooltip.
    static func mark(_ name: String, _ attributes: [(String, String)], tooltip: String) -> Markup {
        Markup(name, attributes, [.element(Markup("title", text: tooltip))])
    }

    /// The horizontal axis at `y` from `scale.start` to `scale.end`, with its label.
    static func xAxis(_ scale: Scale, y: Double, label: String, grid top: Double? = nil) -> Markup {
        var g = Markup("g", [("class", "axis x")])
        g.add(line(scale.start, y, scale.end, y, cls: "domain"))
        for t in scale.ticks {
            let x = scale(t)
            if let top { g.add(line(x, top, x, y, cls: "grid")) }
            g.add(line(x, y, x, y + 5, cls: "tick"))
            g.add(text(tickLabel(t), x: x, y: y + 17, anchor: "middle", cls: "tick-label"))
        }
        g.add(text(label, x: (scale.start + scale.end) / 2, y: y + 36, anchor: "middle", cls: "axis-label"))
        return g
    }

    /// The vertical axis at `x`, with its label turned along it.
    static func yAxis(_ scale: Scale, x: Double, label: String, grid right: Double? = nil) -> Markup {
        var g = Markup("g", [("class", "axis y")])
        g.add(line(x, scale.start, x, scale.end, cls: "domain"))
        for t in scale.ticks {
            let y = scale(t)
            if let right { g.add(line(x, y, right, y, cls: "grid")) }
            g.add(line(x - 5, y, x, y, cls: "tick"))
            g.add(text(tickLabel(t), x: x - 8, y: y + 4, anchor: "end", cls: "tick-label"))
        }
        g.add(text(label, x: x - 48, y: (scale.start + scale.end) / 2, anchor: "middle", cls: "axis-label", rotate: true))
        return g
    }

    /// A legend: a swatch (a dot, a line or a square) and a name per entry, in a row.
    static func legend(_ entries: [(name: String, colour: String, shape: String)], x: Double, y: Double) -> Markup {
        var g = Markup("g", [("class", "legend")])
        var at = x
        for entry in entries {
            switch entry.shape {
            case "line": g.add(Markup("line", [("x1", fmt(at, 1)), ("y1", fmt(y - 4, 1)), ("x2", fmt(at + 16, 1)), ("y2", fmt(y - 4, 1)), ("stroke", entry.colour), ("class", "legend-line")]))
            case "dashed": g.add(Markup("line", [("x1", fmt(at, 1)), ("y1", fmt(y - 4, 1)), ("x2", fmt(at + 16, 1)), ("y2", fmt(y - 4, 1)), ("stroke", entry.colour), ("class", "legend-line dashed")]))
            case "dot": g.add(Markup("circle", [("cx", fmt(at + 8, 1)), ("cy", fmt(y - 4, 1)), ("r", "4"), ("fill", entry.colour)]))
            default: g.add(Markup("rect", [("x", fmt(at + 2, 1)), ("y", fmt(y - 10, 1)), ("width", "12"), ("height", "12"), ("fill", entry.colour), ("class", "swatch")]))
            }
            g.add(text(entry.name, x: at + 21, y: y, cls: "legend-label"))
            at += 21 + Double(entry.name.count) * 6.6 + 18
        }
        return g
    }

    // MARK: Charts

    struct Point {
        var x: Double
        var y: Double
        var label: String
        var tooltip: String
    }

    /// The points no other point beats on both axes (smaller x and smaller y, or larger y when
    /// `higherIsBetter`), in order of x: the front a sweep should push towards the corner.
    static func paretoFront(_ points: [Point], higherIsBetter: Bool) -> [Int] {
        let order = points.indices.sorted { points[$0].x != points[$1].x ? points[$0].x < points[$1].x : (higherIsBetter ? points[$0].y > points[$1].y : points[$0].y < points[$1].y) }
        var front: [Int] = []
        var best = higherIsBetter ? -Double.infinity : Double.infinity
        for i in order where higherIsBetter ? points[i].y > best : points[i].y < best {
            front.append(i)
            best = points[i].y
        }
        return front
    }

    /// Size against a quality measure: a labelled dot per evaluation, the Pareto front drawn
    /// through the dots no other dot beats.
    static func scatter(_ points: [Point], xLabel: String, yLabel: String, higherIsBetter: Bool, title: String) -> Markup {
        let width = 760.0, height = 420.0
        let left = 78.0, right = 170.0, top = 34.0, bottom = 56.0
        let ys = points.map(\.y).filter(\.isFinite)
        let logY = !higherIsBetter && (ys.min() ?? 1) > 0 && (ys.max() ?? 1) / (ys.min() ?? 1) > 8
        let x = Scale(values: points.map(\.x), start: left, end: width - right)
        let y = Scale(values: ys, start: height - bottom, end: top, log: logY)
        var children = [
            xAxis(x, y: height - bottom, label: xLabel, grid: top),
            yAxis(y, x: left, label: yLabel + (logY ? " (log scale)" : ""), grid: width - right),
        ]
        let front = paretoFront(points.filter { $0.y.isFinite }, higherIsBetter: higherIsBetter)
        let finite = points.filter { $0.y.isFinite }
        if front.count > 1 {
            let path = front.map { "\(fmt(x(finite[$0].x), 1)),\(fmt(y(finite[$0].y), 1))" }.joined(separator: " ")
            children.append(Markup("polyline", [("points", path), ("class", "front"), ("stroke", palette[1])]))
        }
        let onFront = Set(front.map { finite[$0].tooltip })
        var marks = Markup("g", [("class", "marks")])
        var labels = Markup("g", [("class", "point-labels")])
        for point in points {
            let py = point.y.isFinite ? y(point.y) : top
            let colour = onFront.contains(point.tooltip) ? palette[1] : palette[0]
            marks.add(mark("circle", [("cx", fmt(x(point.x), 1)), ("cy", fmt(py, 1)), ("r", "5"), ("fill", colour), ("class", "mark")], tooltip: point.tooltip))
            labels.add(text(point.label, x: x(point.x) + 8, y: py - 7, cls: "point-label"))
        }
        children += [marks, labels, legend([("evaluation", palette[0], "dot"), ("on the Pareto front", palette[1], "dot"), ("Pareto front", palette[1], "line")], x: left, y: 20)]
        return svg("scatter", width: width, height: height, title: title, children)
    }

    struct Bar {
        var label: String
        var value: Double
        /// A second value drawn as a tick on the bar (the sparsity asked for).
        var target: Double?
        var tooltip: String
        /// The category the bar is coloured by (a quantization scheme), with a legend when
        /// there is more than one.
        var category: String? = nil
    }

    /// One horizontal bar per row, in the order given, with the value at its end.
    static func bars(_ rows: [Bar], valueLabel: String, title: String, domain: ClosedRange<Double>? = nil, format: (Double) -> String = value, targetName: String? = nil) -> Markup {
        let rowHeight = rows.count > 60 ? 10.0 : 16.0
        let longest = rows.map(\.label.count).max() ?? 4
        let left = min(260, max(70, Double(longest) * (rowHeight > 12 ? 6.6 : 5.4) + 14)), right = 80.0, top = 34.0, bottom = 52.0
        let width = 760.0
        let height = top + Double(rows.count) * rowHeight + bottom
        let values = rows.map(\.value) + rows.compactMap(\.target)
        var x = Scale(values: domain.map { [$0.lowerBound, $0.upperBound] } ?? values, start: left, end: width - right, includeZero: true)
        if let domain { x.low = domain.lowerBound; x.high = domain.upperBound }
        var children = [xAxis(x, y: height - bottom, label: valueLabel, grid: top)]
        var names = Markup("g", [("class", "axis y")])
        names.add(line(left, top, left, height - bottom, cls: "domain"))
        var marks = Markup("g", [("class", "marks")])
        var categories: [String] = []
        for row in rows { if let c = row.category, !categories.contains(c) { categories.append(c) } }
        func colour(_ row: Bar) -> String {
            guard categories.count > 1, let c = row.category, let i = categories.firstIndex(of: c) else { return palette[0] }
            return palette[[0, 1, 2, 3, 5, 6, 7][i % 7]]
        }
        for (i, row) in rows.enumerated() {
            let y0 = top + Double(i) * rowHeight
            names.add(text(row.label, x: left - 6, y: y0 + rowHeight * 0.75, anchor: "end", cls: rowHeight > 12 ? "tick-label" : "tick-label small"))
            let v = row.value.isFinite ? row.value : x.high
            let x0 = x(max(x.low, 0)), x1 = x(min(max(v, x.low), x.high))
            marks.add(mark("rect", [
                ("x", fmt(min(x0, x1), 1)), ("y", fmt(y0 + 1.5, 1)), ("width", fmt(max(abs(x1 - x0), 0.5), 1)),
                ("height", fmt(rowHeight - 3, 1)), ("fill", colour(row)), ("class", "mark"),
            ], tooltip: row.tooltip))
            if let target = row.target {
                let tx = x(min(max(target, x.low), x.high))
                marks.add(Markup("line", [("x1", fmt(tx, 1)), ("y1", fmt(y0, 1)), ("x2", fmt(tx, 1)), ("y2", fmt(y0 + rowHeight, 1)), ("stroke", palette[4]), ("class", "target")]))
            }
            if rowHeight > 12 { marks.add(text(format(row.value), x: x1 + 4, y: y0 + rowHeight * 0.75, cls: "value-label")) }
        }
        names.add(text("layer", x: 12, y: top - 10, cls: "axis-label"))
        children += [names, marks]
        if let targetName {
            children.append(legend([(valueLabel, palette[0], "square"), (targetName, palette[4], "line")], x: left, y: 20))
        } else if categories.count > 1 {
            children.append(legend(categories.prefix(7).map { c in (c, colour(rows.first { $0.category == c }!), "square") }, x: left, y: 20))
        }
        return svg("bars", width: width, height: height, title: title, children)
    }

    struct Series {
        var name: String
        var points: [(x: Double, y: Double)]
    }

    /// Lines through points, a dot per point, a legend naming each series.
    static func lines(_ series: [Series], xLabel: String, yLabel: String, title: String, logY: Bool? = nil, dashed: Set<Int> = []) -> Markup {
        let width = 760.0, height = 380.0
        let left = 78.0, right = 24.0, top = 34.0, bottom = 56.0
        let all = series.flatMap(\.points)
        let ys = all.map(\.y).filter { $0.isFinite }
        let log = logY ?? ((ys.min() ?? 1) > 0 && (ys.max() ?? 1) / (ys.min() ?? 1) > 20)
        let x = Scale(values: all.map(\.x), start: left, end: width - right)
        let y = Scale(values: ys, start: height - bottom, end: top, log: log)
        var children = [
            xAxis(x, y: height - bottom, label: xLabel, grid: top),
            yAxis(y, x: left, label: yLabel + (log ? " (log scale)" : ""), grid: width - right),
        ]
        var entries: [(String, String, String)] = []
        for (k, s) in series.enumerated() {
            let colour = palette[k % palette.count]
            let finite = s.points.filter { $0.y.isFinite }
            let path = finite.map { "\(fmt(x($0.x), 1)),\(fmt(y($0.y), 1))" }.joined(separator: " ")
            var g = Markup("g", [("class", "series")])
            if finite.count > 1 { g.add(Markup("polyline", [("points", path), ("stroke", colour), ("class", dashed.contains(k) ? "line dashed" : "line")])) }
            let r = s.points.count > 120 ? "1.6" : "3"
            for p in s.points {
                let py = p.y.isFinite ? y(p.y) : top
                g.add(mark("circle", [("cx", fmt(x(p.x), 1)), ("cy", fmt(py, 1)), ("r", r), ("fill", colour), ("class", "mark")],
                           tooltip: "\(s.name): \(tickLabel(p.x)), \(value(p.y))"))
            }
            children.append(g)
            entries.append((s.name, colour, dashed.contains(k) ? "dashed" : "line"))
        }
        children.append(legend(entries, x: left, y: 20))
        return svg("lines", width: width, height: height, title: title, children)
    }

    struct Cell {
        var row: Int
        var column: Int
        /// Where the cell sits on the colour scale, 0...1.
        var shade: Double
        var text: String
        var tooltip: String
    }

    /// A grid of blocks (rows) × layer types (columns), each layer a coloured cell with its value
    /// written in it, so the colour is never the only carrier of the value.
    static func map(rows: [String], columns: [String], cells: [Cell], rowLabel: String, columnLabel: String,
                    legend entries: [(name: String, shade: Double)], title: String) -> Markup {
        let cellW = max(52.0, min(96.0, 620.0 / Double(max(columns.count, 1)))), cellH = 18.0
        let left = 72.0, top = 64.0, bottom = 40.0
        let width = max(420, left + Double(columns.count) * cellW + 20)
        let height = top + Double(rows.count) * cellH + bottom
        var columnsAxis = Markup("g", [("class", "axis x")])
        for (j, name) in columns.enumerated() {
            columnsAxis.add(text(name, x: left + (Double(j) + 0.5) * cellW, y: top - 6, anchor: "middle", cls: "tick-label"))
        }
        columnsAxis.add(text(columnLabel, x: left + Double(columns.count) * cellW / 2, y: top - 24, anchor: "middle", cls: "axis-label"))
        var rowsAxis = Markup("g", [("class", "axis y")])
        for (i, name) in rows.enumerated() {
            rowsAxis.add(text(name, x: left - 6, y: top + (Double(i) + 0.7) * cellH, anchor: "end", cls: "tick-label"))
        }
        rowsAxis.add(text(rowLabel, x: 16, y: top + Double(rows.count) * cellH / 2, anchor: "middle", cls: "axis-label", rotate: true))
        var marks = Markup("g", [("class", "marks")])
        for cell in cells {
            let x0 = left + Double(cell.column) * cellW, y0 = top + Double(cell.row) * cellH
            marks.add(mark("rect", [
                ("x", fmt(x0 + 1, 1)), ("y", fmt(y0 + 1, 1)), ("width", fmt(cellW - 2, 1)), ("height", fmt(cellH - 2, 1)),
                ("fill", sequential(cell.shade)), ("class", "mark"),
            ], tooltip: cell.tooltip))
            marks.add(text(cell.text, x: x0 + cellW / 2, y: y0 + cellH * 0.7, anchor: "middle", cls: "cell-label", extra: [("fill", textOnSequential(cell.shade))]))
        }
        var legendGroup = Markup("g", [("class", "legend")])
        var at = left
        for entry in entries {
            legendGroup.add(Markup("rect", [("x", fmt(at, 1)), ("y", fmt(height - 26, 1)), ("width", "12"), ("height", "12"), ("fill", sequential(entry.shade)), ("class", "swatch")]))
            legendGroup.add(text(entry.name, x: at + 16, y: height - 16, cls: "legend-label"))
            at += 16 + Double(entry.name.count) * 6.6 + 14
        }
        return svg("map", width: max(width, at + 10), height: height, title: title, [columnsAxis, rowsAxis, marks, legendGroup])
    }
}
