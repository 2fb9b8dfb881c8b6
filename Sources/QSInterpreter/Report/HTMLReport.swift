import Foundation
import QSEngine

/// The HTML report of a session: everything it measured and did, as one self-contained page
/// (inline SVG and CSS, nothing fetched, no scripts). Sections appear only when their data
/// exists; a session that measured nothing says so.
enum HTMLReport {
    /// The generator line every report carries: `report html` replaces a file only when it
    /// starts with a report of its own (or with `overwrite`).
    static let generator = "qs report"

    /// Commands that change the weights: a record measured before the last of these describes a
    /// model that is no longer held.
    static let changingCommands: Set<String> = ["quantize", "prune", "autoquant", "finetune", "tune", "reset", "restore", "load"]

    struct Section {
        var id: String
        var title: String
        var content: [Markup]
    }

    /// The whole page.
    static func render(_ session: Session, title: String?, date: Date = Date()) throws -> String {
        let loaded = session.workspace.loaded
        let history = loaded == nil ? [] : session.workspace.history
        let heading = title ?? (loaded.map { "qs report: \($0.name)" } ?? "qs report")
        var sections: [Section] = []
        if let loaded {
            sections += try [
                summary(history, loaded: loaded), tradeOff(history), evaluations(history), quantization(history, loaded: loaded, session: session),
                bitsMap(history, loaded: loaded), sensitivity(history), sparsity(loaded), training(history), speed(history),
            ].compactMap { $0 }
        }
        let measured = !sections.isEmpty
        if !history.isEmpty { sections.append(recipe(history)) }

        var head = Markup("head")
        head.add(Markup("meta", [("charset", "utf-8")]))
        head.add(Markup("meta", [("name", "generator"), ("content", "\(generator) \(QSVersion.number)")]))
        head.add(Markup("meta", [("name", "viewport"), ("content", "width=device-width, initial-scale=1")]))
        head.add(Markup("title", text: heading))
        head.add(Markup("style", text: css))
        var body = Markup("body")
        var header = Markup("header")
        header.add(Markup("h1", text: heading))
        var facts: [String] = []
        if let loaded {
            let c = loaded.config
            facts.append("\(loaded.name): \(c.architecture.rawValue), \(InspectFormatting.humanCount(loaded.parameterCount)) parameters, \(c.numHiddenLayers) blocks")
            facts.append("from \(loaded.checkpoint.path) (\(loaded.checkpoint.format.rawValue))")
        }
        let stamp = ISO8601DateFormatter().string(from: date)
        facts.append("qs \(QSVersion.number), \(stamp)")
        header.add(Markup("p", [("class", "facts")], text: facts.joined(separator: " · ")))
        if sections.count > 1 {
            var nav = Markup("nav")
            var list = Markup("ul")
            for section in sections {
                var item = Markup("li")
                item.add(Markup("a", [("href", "#" + section.id)], text: section.title))
                list.add(item)
            }
            nav.add(list)
            header.add(nav)
        }
        body.add(header)
        var main = Markup("main")
        if !measured {
            let why = loaded == nil
                ? "No model was loaded in this session, so nothing was measured or changed."
                : "Nothing was measured in this session: no evaluation, benchmark, quantization, pruning, sensitivity or training ran after the model was loaded."
            main.add(Markup("p", [("class", "empty")], text: why))
        }
        for section in sections {
            var element = Markup("section", [("id", section.id)])
            element.add(Markup("h2", text: section.title))
            element.add(section.content)
            main.add(element)
        }
        body.add(main)
        var html = Markup("html", [("lang", "en")])
        html.add(head)
        html.add(body)
        return "<!DOCTYPE html>\n" + html.rendered + "\n"
    }

    // MARK: Reading records

    static func number(_ record: Record?, _ name: String) -> Double? { record?[name]?.number }
    static func text(_ record: Record?, _ name: String) -> String? { record?[name]?.text }

    /// What an evaluation record measured: ppl (with kld), embed or classify.
    static func kind(_ record: Record) -> String {
        if record["cosine"] != nil { return "embed" }
        if record["accuracy"] != nil { return "classify" }
        if record["kld"] != nil { return "kld" }
        return "ppl"
    }

    /// The protocol of an evaluation, as a person reads it.
    static func protocolText(_ record: Record) -> String {
        switch kind(record) {
        case "embed": return "embed \(text(record, "text") ?? "?"), \(Int(number(record, "sentences") ?? 0)) sentences"
        case "classify": return "classify \(text(record, "text") ?? "?"), \(Int(number(record, "train") ?? 0)) train / \(Int(number(record, "test") ?? 0)) test per topic"
        default:
            let ctx = Int(number(record, "ctx") ?? 0), stride = Int(number(record, "stride") ?? 0)
            let bos = record["bos"] == .bool(true) ? ", BOS first" : ""
            return "\(text(record, "text") ?? "?"), \(Int(number(record, "tokens") ?? 0)) tokens, ctx \(ctx)" + (stride != ctx && stride > 0 ? ", stride \(stride)" : "") + bos
        }
    }

    /// Evaluations that can share a plot: the same text and windows (ppl and kld of one protocol
    /// give the same perplexity).
    static func protocolKey(_ record: Record) -> String {
        let k = kind(record)
        return (k == "kld" ? "ppl" : k) + "|" + protocolText(record)
    }

    static func records(_ history: [CommandRecord], _ command: String) -> [(CommandRecord, Record)] {
        history.compactMap { entry in
            guard entry.command == command, let record = entry.result.record else { return nil }
            return (entry, record)
        }
    }

    /// Whether a command that changes the weights ran after `index` in the history.
    static func changedAfter(_ index: Int, in history: [CommandRecord]) -> Bool {
        history[(index + 1)...].contains { changingCommands.contains($0.command) }
    }

    static func place(_ entry: CommandRecord) -> String {
        "\((entry.file as NSString).lastPathComponent):\(entry.line)"
    }

    // MARK: Tables

    static func table(_ header: [String], _ rows: [[String]], numeric: Set<Int> = [], caption: String? = nil) -> Markup {
        var table = Markup("table")
        if let caption { table.add(Markup("caption", text: caption)) }
        var head = Markup("thead")
        var tr = Markup("tr")
        for (i, cell) in header.enumerated() { tr.add(Markup("th", numeric.contains(i) ? [("class", "num")] : [], text: cell)) }
        head.add(tr)
        table.add(head)
        var body = Markup("tbody")
        for row in rows {
            var tr = Markup("tr")
            for (i, cell) in row.enumerated() { tr.add(Markup("td", numeric.contains(i) ? [("class", "num")] : [], text: cell)) }
            body.add(tr)
        }
        table.add(body)
        return table
    }

    static func paragraph(_ text: String, cls: String = "note") -> Markup { Markup("p", [("class", cls)], text: text) }

    /// A figure: the chart and a caption under it.
    static func figure(_ chart: Markup, caption: String) -> Markup {
        var figure = Markup("figure")
        figure.add(chart)
        figure.add(Markup("figcaption", text: caption))
        return figure
    }

    static func details(_ summary: String, _ content: Markup) -> Markup {
        var details = Markup("details")
        details.add(Markup("summary", text: summary))
        details.add(content)
        return details
    }

    static func percent(_ v: Double?, _ digits: Int = 2) -> String { v.map { fmt($0 * 100, digits) + "%" } ?? "–" }
    static func figure(_ v: Double?, _ digits: Int = 4) -> String { v.map { $0.isFinite ? fmt($0, digits) : "\($0)" } ?? "–" }

    // MARK: Sections

    /// Before and after: the model as loaded against the last measurement of the model as held.
    static func summary(_ history: [CommandRecord], loaded: LoadedModel) -> Section? {
        let loadRecord = history.first { $0.command == "load" }?.result.record
        let evals = records(history, "eval")
        let benches = records(history, "bench")
        var rows: [[String]] = []
        func change(_ before: Double?, _ after: Double?, relative: Bool = true) -> String {
            guard let before, let after, before.isFinite, after.isFinite else { return "–" }
            if relative, before != 0 { let r = after / before - 1; return (r >= 0 ? "+" : "") + fmt(r * 100, 2) + "%" }
            let d = after - before
            return (d >= 0 ? "+" : "") + Charts.value(d)
        }
        let modified = evals.filter { $0.0.state != "as loaded" }
        if let (_, last) = modified.last(where: { ["ppl", "kld"].contains(kind($0.1)) }) {
            let before = number(last, "base_ppl"), after = number(last, "ppl")
            rows.append(["perplexity (\(protocolText(last)))", figure(before), figure(after), change(before, after)])
        }
        if let (_, last) = modified.last(where: { kind($0.1) == "kld" }) {
            rows.append(["KL divergence, mean", "0", figure(number(last, "kld"), 5), "–"])
            rows.append(["top-1 agreement", "100%", percent(number(last, "top1")), number(last, "top1").map { fmt(($0 - 1) * 100, 2) + " points" } ?? "–"])
        }
        if let (_, last) = modified.last(where: { kind($0.1) == "embed" }) {
            rows.append(["embedding cosine, mean (\(protocolText(last)))", "1", figure(number(last, "cosine"), 5), change(1, number(last, "cosine"), relative: false)])
        }
        if let (_, last) = modified.last(where: { kind($0.1) == "classify" }) {
            rows.append(["topic accuracy", percent(number(last, "base_accuracy")), percent(number(last, "accuracy")), change(number(last, "base_accuracy"), number(last, "accuracy"), relative: false)])
        }
        let beforeMB = number(loadRecord, "size_mb"), afterMB = Double(loaded.heldBytes) / 1e6
        if loaded.isModified || !rows.isEmpty {
            rows.append(["size, MB", figure(beforeMB, 2), fmt(afterMB, 2), change(beforeMB, afterMB)])
            let afterBits = Double(loaded.heldBytes) * 8 / Double(max(loaded.parameterCount, 1))
            rows.append(["bits per weight (scales counted)", figure(number(loadRecord, "bits_per_weight"), 3), fmt(afterBits, 3), change(number(loadRecord, "bits_per_weight"), afterBits)])
            if let params = number(loadRecord, "params"), Int(params) != loaded.parameterCount {
                rows.append(["parameters", InspectFormatting.humanCount(Int(params)), InspectFormatting.humanCount(loaded.parameterCount), change(params, Double(loaded.parameterCount))])
            }
        }
        let baseBench = benches.last { $0.0.state == "as loaded" }?.1, lastBench = benches.last { $0.0.state != "as loaded" }?.1
        for (field, name) in [("prefill_tok_s", "prefill, tokens/s"), ("decode_tok_s", "decode, tokens/s"), ("peak_mb", "peak memory, MB")] {
            let before = number(baseBench, field), after = number(lastBench, field)
            if before != nil || after != nil { rows.append([name, figure(before, 1), figure(after, 1), change(before, after)]) }
        }
        if baseBench == nil && lastBench == nil {
            let before = evals.last { $0.0.state == "as loaded" }.flatMap { number($0.1, "tokens_per_s") }
            let after = modified.last { number($0.1, "tokens_per_s") != nil }.flatMap { number($0.1, "tokens_per_s") }
            if before != nil || after != nil { rows.append(["evaluation, tokens/s", figure(before, 1), figure(after, 1), change(before, after)]) }
        }
        guard !rows.isEmpty else { return nil }
        var content = [table(["measure", "as loaded", "as held now", "change"], rows, numeric: [1, 2, 3])]
        content.append(paragraph("As held now: \(loaded.schemeLabel). The “as loaded” column is the model before any command changed it (evaluations compare against it on the same text); “as held now” is the last measurement after a change."))
        return Section(id: "summary", title: "Before and after", content: content)
    }

    /// Size against quality, a plot per evaluation protocol, with the Pareto front.
    static func tradeOff(_ history: [CommandRecord]) -> Section? {
        let loadRecord = history.first { $0.command == "load" }?.result.record
        var groups: [(key: String, points: [Charts.Point], kind: String, record: Record)] = []
        for (entry, record) in records(history, "eval") {
            let k = kind(record)
            let key = protocolKey(record)
            guard let size = number(record, "size_mb") else { continue }
            let y: Double?, base: Double?
            switch k {
            case "embed": (y, base) = (number(record, "cosine"), 1)
            case "classify": (y, base) = (number(record, "accuracy").map { $0 * 100 }, number(record, "base_accuracy").map { $0 * 100 })
            default: (y, base) = (number(record, "ppl"), number(record, "base_ppl"))
            }
            guard let y else { continue }
            let label = entry.state ?? "?"
            var point = Charts.Point(x: size, y: y, label: label, tooltip: "\(place(entry)) \(entry.source): \(label), \(fmt(size, 2)) MB, \(Charts.value(y))")
            // Two evaluations of the same model on the same windows (ppl, then kld) are one dot.
            func same(_ p: Charts.Point) -> Bool { p.label == label && p.x == size && abs(p.y - y) <= 1e-5 * abs(y) }
            if let at = groups.firstIndex(where: { $0.key == key }) {
                if !groups[at].points.contains(where: same) { groups[at].points.append(point) }
            } else {
                groups.append((key, [], k, record))
                if label != "as loaded", let base, let loadSize = number(loadRecord, "size_mb") {
                    groups[groups.count - 1].points.append(Charts.Point(x: loadSize, y: base, label: "as loaded", tooltip: "as loaded (measured with \(place(entry))): \(fmt(loadSize, 2)) MB, \(Charts.value(base))"))
                }
                if groups[groups.count - 1].points.contains(where: same) { continue }
                point.label = label
                groups[groups.count - 1].points.append(point)
            }
        }
        guard !groups.isEmpty else { return nil }
        var content: [Markup] = []
        for group in groups {
            let (yLabel, better) = group.kind == "embed" ? ("mean cosine to the model as loaded", true)
                : group.kind == "classify" ? ("topic accuracy, %", true) : ("perplexity", false)
            let title = "Size against \(yLabel): \(protocolText(group.record))"
            content.append(figure(
                Charts.scatter(group.points, xLabel: "weights as held, MB", yLabel: yLabel, higherIsBetter: better, title: title),
                caption: "\(title). One dot per evaluation, labelled with the model's scheme at the time; the line joins the Pareto front (no other point is both smaller and \(better ? "higher" : "lower"))."))
        }
        return Section(id: "trade-off", title: "Size and quality", content: content)
    }

    /// Every evaluation, with its protocol.
    static func evaluations(_ history: [CommandRecord]) -> Section? {
        let evals = records(history, "eval")
        guard !evals.isEmpty else { return nil }
        let rows = evals.map { entry, r -> [String] in
            let measure: String
            switch kind(r) {
            case "embed": measure = "cosine \(figure(number(r, "cosine"), 5)) (worst \(figure(number(r, "cosine_min"), 4)))"
            case "classify": measure = "accuracy \(percent(number(r, "accuracy"))) (as loaded \(percent(number(r, "base_accuracy"))))"
            case "kld": measure = "ppl \(figure(number(r, "ppl"))), KLD \(figure(number(r, "kld"), 5)), top-1 \(percent(number(r, "top1")))"
            default: measure = "ppl \(figure(number(r, "ppl"))) (as loaded \(figure(number(r, "base_ppl"))))"
            }
            return [place(entry), kind(r), protocolText(r), entry.state ?? "?", measure, figure(number(r, "size_mb"), 2), figure(number(r, "bits_per_weight"), 3), figure(number(r, "tokens_per_s"), 1)]
        }
        let content = [table(["line", "kind", "protocol", "model", "result", "MB", "bits/w", "tokens/s"], rows, numeric: [5, 6, 7])]
        return Section(id: "evaluations", title: "Evaluations", content: content)
    }

    /// Per-layer quantization error of the layers quantized now, worst first.
    static func quantization(_ history: [CommandRecord], loaded: LoadedModel, session: Session) throws -> Section? {
        let entries = loaded.model.names.entries.filter { loaded.weights.contains($0.weight) }
        var rows = try ReportCommand.quantRows(entries, loaded: loaded, isCancelled: session.isCancelled)
        guard !rows.isEmpty else { return nil }
        // Output errors measured by `report quant` when no change came after it.
        var measuredAt: String?
        if let index = history.lastIndex(where: { $0.command == "report" && text($0.result.record, "report") == "quant" }),
            !changedAfter(index, in: history), case .list(let layers)? = history[index].result.record?["layers"] {
            var errors: [String: Double] = [:]
            for layer in layers { if let r = layer.record, let name = text(r, "layer"), let e = number(r, "output_error") { errors[name] = e } }
            // Used only when it covers every layer: bars of two measures would not compare.
            if rows.allSatisfy({ errors[$0.layer] != nil }) {
                for i in rows.indices { rows[i].result.outputError = errors[rows[i].layer] }
                measuredAt = place(history[index])
            }
        }
        let useOutput = rows.contains { $0.result.outputError != nil }
        rows.sort { ReportCommand.worseFirst($0.result, $1.result) }
        let bars = rows.map { row in
            Charts.Bar(label: row.layer, value: useOutput ? (row.result.outputError ?? 0) * 100 : ReportCommand.relativeError(row.result) * 100, target: nil,
                       tooltip: "\(row.layer): \(row.result.scheme), SQNR \(fmt(row.result.sqnr, 2)) dB" + (row.result.outputError.map { ", output error \(fmt($0 * 100, 3))%" } ?? ""),
                       category: row.result.scheme)
        }
        let what = useOutput ? "relative output error on calibration inputs, %" : "relative weight error ‖W − Ŵ‖ / ‖W‖, %"
        var content = [figure(
            Charts.bars(bars, valueLabel: what, title: "Quantization error per layer, worst first", format: { fmt($0, 3) }),
            caption: "Quantization error of each of the \(rows.count) quantized layers, worst first, coloured by scheme when there are several: \(what)" + (measuredAt.map { " (measured by report quant at \($0))" } ?? " (the weights against the values they were quantized from; `report quant` with a calibration set adds the output error)") + ".")]
        let tableRows = rows.map { row in
            [row.layer, row.result.scheme, fmt(row.result.bitsPerWeight, 3), String(format: "%.3e", row.result.weightMSE), fmt(row.result.sqnr, 2), row.result.outputError.map { fmt($0 * 100, 3) + "%" } ?? "–"]
        }
        content.append(details("The numbers, layer by layer", table(["layer", "scheme", "bits/w", "weight MSE", "SQNR dB", "output error"], tableRows, numeric: [2, 3, 4, 5])))
        return Section(id: "quantization", title: "Quantization error", content: content)
    }

    /// A block's layer, as (block number, type): `layer.3.mlp.up` is (3, "mlp.up").
    static func blockPosition(_ canonical: String) -> (block: Int, type: String)? {
        let parts = canonical.split(separator: ".", maxSplits: 2).map(String.init)
        guard parts.count == 3, parts[0] == "layer", let block = Int(parts[1]) else { return nil }
        return (block, parts[2])
    }

    /// Where bits per weight sit on the colour scale: log2 from 1 to 32 bits.
    static func bitsShade(_ bits: Double) -> Double { min(1, max(0, log2(max(bits, 1)) / 5)) }

    static func layerMap(_ items: [(layer: String, text: String, shade: Double, tooltip: String)], legend: [(String, Double)], title: String) -> Markup? {
        var columns: [String] = [], blocks: Set<Int> = []
        for item in items {
            guard let (block, type) = blockPosition(item.layer) else { continue }
            if !columns.contains(type) { columns.append(type) }
            blocks.insert(block)
        }
        guard !blocks.isEmpty else { return nil }
        let rows = blocks.sorted()
        let cells = items.compactMap { item -> Charts.Cell? in
            guard let (block, type) = blockPosition(item.layer) else { return nil }
            return Charts.Cell(row: rows.firstIndex(of: block)!, column: columns.firstIndex(of: type)!, shade: item.shade, text: item.text, tooltip: item.tooltip)
        }
        return Charts.map(rows: rows.map { "block \($0)" }, columns: columns, cells: cells, rowLabel: "block", columnLabel: "layer", legend: legend, title: title)
    }

    static let bitsLegend: [(String, Double)] = [(2, "2"), (3, "3"), (4, "4"), (5, "5"), (8, "8"), (16, "16"), (32, "32")].map { ("\($0.1) bits", bitsShade(Double($0.0))) }

    /// The bits of every block layer: the autoquant plan when it is what is held, else the
    /// layers as held now.
    static func bitsMap(_ history: [CommandRecord], loaded: LoadedModel) throws -> Section? {
        var content: [Markup] = []
        if let index = history.lastIndex(where: { $0.command == "autoquant" }), !changedAfter(index, in: history),
            let record = history[index].result.record, case .list(let plan)? = record["plan"] {
            let items = plan.compactMap { value -> (String, String, Double, String)? in
                guard let r = value.record, let layer = text(r, "layer"), let bits = number(r, "bits") else { return nil }
                return (layer, "\(Int(bits))", bitsShade(bits), "\(layer): \(Int(bits)) bits, predicted damage \(Charts.value(number(r, "damage") ?? 0))")
            }
            let target = number(record, "target").map { fmt($0, 2) } ?? "?"
            let title = "The autoquant plan: bits per layer for \(target) bits per weight"
            if let map = layerMap(items, legend: bitsLegend, title: title) {
                content.append(figure(map, caption: "\(title) (\(place(history[index]))): predicted damage \(Charts.value(number(record, "predicted_damage") ?? 0)) against \(Charts.value(number(record, "uniform_damage") ?? 0)) for \(Int(number(record, "uniform_bits") ?? 0)) bits everywhere; the matched layers hold \(fmt(number(record, "layer_bits_per_weight") ?? 0, 3)) bits per weight with scales."))
            }
        } else {
            var items: [(String, String, Double, String)] = []
            var quantized = false
            for entry in loaded.model.names.entries where entry.kind.isMatrix && loaded.weights.contains(entry.weight) {
                let weight = try loaded.weights.weight(entry.weight)
                quantized = quantized || weight.isQuantized
                let bits = Double(weight.byteCount) * 8 / Double(max(weight.count, 1))
                let short = weight.formName.split(separator: " ").first.map(String.init) ?? weight.formName
                items.append((entry.canonical, short, bitsShade(bits), "\(entry.canonical): \(weight.formName), \(fmt(bits, 3)) bits per weight with scales"))
            }
            guard quantized, let map = layerMap(items, legend: bitsLegend, title: "Bits per layer as held now") else { return nil }
            content.append(figure(map, caption: "The form of every block layer as held now, coloured by its bits per weight (scales and zero points counted); the cell names the type."))
        }
        guard !content.isEmpty else { return nil }
        return Section(id: "bits", title: "Bits per layer", content: content)
    }

    /// The last sensitivity ranking, most sensitive first.
    static func sensitivity(_ history: [CommandRecord]) -> Section? {
        guard let (entry, record) = records(history, "sensitivity").last, case .list(let units)? = record["units"], !units.isEmpty else { return nil }
        let metric = text(record, "metric") ?? "kld"
        let bars = units.compactMap { value -> Charts.Bar? in
            guard let r = value.record, let unit = text(r, "unit"), let score = number(r, "score") else { return nil }
            return Charts.Bar(label: unit, value: score, target: nil, tooltip: "#\(Int(number(r, "rank") ?? 0)) \(unit): \(metric) \(Charts.value(score))")
        }
        let what = metric == "ppl" ? "perplexity increase" : metric == "kld" ? "mean KL divergence from the model before" : "mean 1 − cosine"
        let title = "Sensitivity by \(text(record, "by") ?? "layer") to \(text(record, "scheme") ?? "?")"
        let content = [figure(Charts.bars(bars, valueLabel: what, title: title), caption: "\(title) (\(place(entry))): each unit quantized alone, the model's \(what), most sensitive first.")]
        return Section(id: "sensitivity", title: "Sensitivity", content: content)
    }

    /// Sparsity asked for and reached, per pruned layer in model order.
    static func sparsity(_ loaded: LoadedModel) throws -> Section? {
        let rows = try Session.sparsityRows(loaded, entries: loaded.model.names.entries)
        guard !rows.isEmpty else { return nil }
        func asked(_ requested: String) -> Double? {
            if requested.hasSuffix("%"), let v = Double(requested.dropLast()) { return v }
            let parts = requested.split(separator: ":")
            if parts.count == 2, let n = Double(parts[0]), let m = Double(parts[1]), m > 0 { return (1 - n / m) * 100 }
            return nil
        }
        let bars = rows.map { row in
            let achieved = Double(row.zeros) / Double(max(row.params, 1)) * 100
            return Charts.Bar(label: row.layer, value: achieved, target: asked(row.requested),
                              tooltip: "\(row.layer): asked \(row.requested), \(fmt(achieved, 2))% of \(row.params) weights zero")
        }
        let zeros = rows.reduce(0) { $0 + $1.zeros }, params = rows.reduce(0) { $0 + $1.params }
        let caption = "Sparsity of each pruned layer in model order: the bar is the share of its weights its mask zeroes, the tick what was asked (N:M as 1 − N/M). In all \(fmt(Double(zeros) / Double(max(params, 1)) * 100, 2))% of \(params) weights in \(rows.count) layers."
        var content = [figure(Charts.bars(bars, valueLabel: "weights pruned, %", title: "Sparsity per layer", domain: 0...100, format: { fmt($0, 1) + "%" }, targetName: "asked"), caption: caption)]
        if let structure = try Session.structureLine(loaded) { content.append(paragraph("Structure: \(structure).")) }
        return Section(id: "sparsity", title: "Sparsity", content: content)
    }

    /// Loss curves of `finetune`, and each block's error before and after `tune blocks`.
    static func training(_ history: [CommandRecord]) -> Section? {
        var content: [Markup] = []
        let runs = records(history, "finetune").compactMap { entry, record -> (CommandRecord, Record, [Double])? in
            guard case .list(let losses)? = record["losses"] else { return nil }
            let values = losses.compactMap(\.number)
            return values.isEmpty ? nil : (entry, record, values)
        }
        if !runs.isEmpty {
            let series = runs.map { entry, record, losses in
                Charts.Series(name: "\(place(entry)) \(text(record, "loss") ?? "ce")", points: losses.enumerated().map { (Double($0.offset + 1), $0.element) })
            }
            let rows = runs.map { entry, record, losses in
                [place(entry), text(record, "params") ?? "?", text(record, "loss") ?? "?", String(losses.count), figure(losses.first), figure(losses.last), figure(number(record, "tokens_per_second"), 1), figure(number(record, "seconds"), 1)]
            }
            content.append(figure(Charts.lines(series, xLabel: "step", yLabel: "training loss", title: "Training loss per step"),
                                  caption: "The loss of every step of each finetune run (cross entropy in nats, or the distillation loss)."))
            content.append(table(["line", "learned", "loss", "steps", "first", "last", "tokens/s", "seconds"], rows, numeric: [3, 4, 5, 6, 7]))
        }
        for (entry, record) in records(history, "tune") {
            guard case .list(let blocks)? = record["blocks"] else { continue }
            var before: [(x: Double, y: Double)] = [], after: [(x: Double, y: Double)] = []
            for value in blocks {
                guard let r = value.record, let block = number(r, "block") else { continue }
                if let b = number(r, "before") { before.append((block, b)) }
                if let a = number(r, "after") { after.append((block, a)) }
            }
            guard !before.isEmpty else { continue }
            let title = "tune blocks (\(place(entry))): each block's output error"
            content.append(figure(Charts.lines([Charts.Series(name: "before", points: before), Charts.Series(name: "after", points: after)], xLabel: "block", yLabel: "mean squared error of the block's outputs", title: title, dashed: [0]),
                                  caption: "\(title): against the model as loaded on the calibration windows, before and after its reconstruction (a block keeps the result only when it improved)."))
        }
        guard !content.isEmpty else { return nil }
        return Section(id: "training", title: "Training", content: content)
    }

    /// Every benchmark.
    static func speed(_ history: [CommandRecord]) -> Section? {
        let benches = records(history, "bench")
        guard !benches.isEmpty else { return nil }
        let hasPeer = benches.contains { $0.1["llama_decode_tok_s"] != nil }
        let rows = benches.map { entry, r -> [String] in
            var row = [place(entry), entry.state ?? "?", figure(number(r, "prefill_tok_s"), 1), figure(number(r, "decode_tok_s"), 1), figure(number(r, "peak_mb"), 0), figure(number(r, "size_mb"), 2), text(r, "kernels") ?? "–"]
            if hasPeer { row += [figure(number(r, "llama_prefill_tok_s"), 1), figure(number(r, "llama_decode_tok_s"), 1)] }
            return row
        }
        var header = ["line", "model", "prefill tok/s", "decode tok/s", "peak MB", "MB", "kernels"]
        if hasPeer { header += ["llama.cpp prefill", "llama.cpp decode"] }
        return Section(id: "speed", title: "Speed", content: [table(header, rows, numeric: Set(2..<header.count).subtracting([6]))])
    }

    /// The commands that ran since `load`, with where they were written.
    static func recipe(_ history: [CommandRecord]) -> Section {
        var list = Markup("ol", [("class", "recipe")])
        for entry in history {
            var item = Markup("li")
            item.add(Markup("span", [("class", "where")], text: place(entry)))
            item.add(Markup("code", text: entry.source))
            list.add(item)
        }
        return Section(id: "recipe", title: "The recipe that ran", content: [paragraph("The commands that completed since the model was loaded, in order, each with its file and line."), list])
    }

    static let css = """
        body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a1a1a; background: #fff; margin: 0 auto; max-width: 980px; padding: 1.5em; }
        h1 { font-size: 1.6em; margin: 0 0 .2em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
        .facts { color: #444; margin: 0 0 1em; } nav ul { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .3em 1.2em; } nav a { color: #0b5cad; }
        table { border-collapse: collapse; margin: .8em 0; font-variant-numeric: tabular-nums; } caption { text-align: left; color: #444; }
        th, td { border-bottom: 1px solid #e2e2e2; padding: .25em .7em; text-align: left; vertical-align: top; } th { background: #f4f4f4; } .num { text-align: right; }
        figure { margin: 1em 0; } figcaption { color: #444; font-size: .92em; max-width: 760px; }
        .recipe code { font: 12.5px/1.4 ui-monospace, "DejaVu Sans Mono", Menlo, monospace; white-space: pre-wrap; } .recipe .where { color: #666; display: inline-block; min-width: 9em; font-size: .9em; }
        .empty { font-size: 1.1em; padding: 1em; background: #f6f6f6; border-left: 4px solid #999; } .note { color: #333; }
        svg.chart { display: block; max-width: 100%; height: auto; font-family: system-ui, sans-serif; }
        svg .domain, svg .tick { stroke: #333; stroke-width: 1; } svg .grid { stroke: #e6e6e6; stroke-width: 1; }
        svg .tick-label { font-size: 11px; fill: #333; } svg .tick-label.small { font-size: 8px; } svg .axis-label { font-size: 12.5px; fill: #111; font-weight: 600; }
        svg .point-label, svg .value-label { font-size: 10.5px; fill: #222; } svg .legend-label { font-size: 11.5px; fill: #222; } svg .cell-label { font-size: 10px; }
        svg .front, svg .line, svg .legend-line { fill: none; stroke-width: 2; } svg .dashed { stroke-dasharray: 5 3; } svg .target { stroke-width: 2; }
        @media print { body { max-width: none; padding: 0; } nav { display: none; } details { display: block; } section { break-inside: avoid-page; } }
        """
}

extension HTMLReport {
    /// The ids of the sections a rendered page holds, in order (the recipe included).
    static func sectionIDs(_ page: String) -> [String] {
        var ids: [String] = []
        var rest = page[...]
        while let range = rest.range(of: "<section id=\"") {
            rest = rest[range.upperBound...]
            guard let end = rest.firstIndex(of: "\"") else { break }
            ids.append(String(rest[..<end]))
        }
        return ids
    }

    /// Whether the file at `path` is a page `report html` wrote (its generator line within the
    /// first 4 KB), which a later report may replace.
    static func isReport(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 4096)) ?? Data()
        return String(decoding: head, as: UTF8.self).contains("<meta name=\"generator\" content=\"\(generator) ")
    }
}
