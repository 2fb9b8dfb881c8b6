import Foundation
import QSEngine
import QSLanguage

/// `report quant`: what quantization did to each layer, worst first.
enum ReportCommand: Command {
    static let spec = CommandSpec(
        "report", summary: "Report what compression did: per layer in the terminal, or the whole session as an HTML page.",
        discussion: """
            `report quant [PATTERN]` lists every quantized (or cast) layer the pattern matches: its scheme, bits per weight (scales and zero points counted), the mean squared and the largest absolute error of its weights against the values it was quantized from, the signal-to-quantization-noise ratio in dB, and, when a calibration set is there, the relative output error ‖XWᵀ − XŴᵀ‖ / ‖XWᵀ‖ on its calibration inputs in the model as it is now (the first `samples` windows). Worst first (by output error when there is one, else by SQNR), then the totals, with a bar per layer (its output error, else ‖W − Ŵ‖ / ‖W‖, against the worst).
            `report sparsity [PATTERN]` lists every pruned layer the pattern matches in model order: the pruning asked for (50%, 2:4), the share of its weights its mask zeroes, its weights and how many are pruned, then the totals, with a bar per layer from none to all of its weights.
            The bars are Unicode block characters, coloured when the output is a terminal and NO_COLOR is unset; the records are the same either way.
            `report html FILE.html [title=...]` writes one self-contained page (inline SVG and CSS, no scripts, nothing fetched; readable offline and printable) of everything the session did since `load`: a before/after table (perplexity, KL divergence, top-1 agreement, size, bits per weight, speed), size against perplexity for every evaluation with the Pareto front drawn, every evaluation with its protocol, the quantization error of each quantized layer worst first, the bits of every block layer as a map (the autoquant plan when it is what is held), the last sensitivity ranking, sparsity asked for and reached per layer, training loss curves and `tune blocks` errors, benchmarks, and the recipe with its source lines. Sections appear only when their data exists; a session that measured nothing gets a page that says so. The folder must exist; the page is written under a temporary name and renamed; an existing file is replaced only when it is a qs report or with `overwrite`, and never when it is one of the loaded model's files. `save` writes the same page into the folder it saves, as report.html.
            """,
        positionals: [
            ArgumentSpec("what", .word, help: "what to report: quant, sparsity, or html", required: true, allowed: ["quant", "sparsity", "html"]),
            ArgumentSpec("pattern", .pattern, help: "quant and sparsity: the layers (default: all); html: the file to write", default: .word("*")),
        ],
        options: [
            ArgumentSpec("samples", .integer, help: "calibration windows for the output error", default: .number(32), range: 1...100_000),
            ArgumentSpec("title", .string, help: "html: the page's title (default: qs report: MODEL)"),
        ],
        flags: [FlagSpec("overwrite", help: "html: replace an existing file that is not a qs report")],
        resultFields: [
            ("report", "quant or sparsity: which report this is"),
            ("layers", "a record per layer: for quant, worst first, layer, scheme, bits_per_weight, weight_mse, sqnr_db, max_error, output_error; for sparsity, in model order, layer, requested, sparsity, params, pruned"),
            ("total", "the same fields over all the layers listed"),
            ("path", "html: the file written"), ("bytes", "html: its size"), ("sections", "html: the sections it holds"),
        ],
        examples: [
            "report quant", "report quant layer.*.mlp.*", "let r = report quant\nassert r.total.sqnr_db > 15", "report sparsity",
            "let s = report sparsity\nassert s.total.sparsity >= 0.5", "report html out/report.html", "report html out/int4.html title=\"int4 sweep\"",
        ])

    struct Row {
        var layer: String
        var result: LayerQuantization
        var bytes: Int
    }

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let what = try invocation.text("what")
        if what == "html" { return try html(invocation, session) }
        let loaded = try session.workspace.requireModel()
        let matched = try Session.matchLayers(try invocation.glob("pattern"), in: loaded)
        if what == "sparsity" { return try sparsity(matched, loaded: loaded, session: session) }
        var rows = try quantRows(matched, loaded: loaded, isCancelled: session.isCancelled)
        guard !rows.isEmpty else {
            throw CommandError.invalidArgument("pattern", "matches no quantized layer of \(loaded.name): quantize some first")
        }
        let rowNames = Set(rows.map(\.layer))
        let quantized = matched.filter { rowNames.contains($0.canonical) }
        if session.workspace.calibration != nil {
            let calibration = try session.calibrationWindows(loaded, invocation: invocation, argument: "what", purpose: "the output error")
            let windows = Array(calibration.windows.prefix(try invocation.integer("samples")))
            let bar = ProgressBar(label: "report", unit: "blocks")
            defer { bar.finish() }
            let errors = try CalibratedQuantizer.outputErrors(
                loaded.model, quantized, windows: windows, progress: { bar.update($0, of: $1) }, isCancelled: session.isCancelled)
            for i in rows.indices { rows[i].result.outputError = errors[rows[i].layer] }
        } else {
            session.note(invocation, "no calibration set: the output error needs one ('calibrate TEXT')")
        }
        rows.sort { worseFirst($0.result, $1.result) }
        let count = rows.reduce(0) { $0 + $1.result.count }
        let signal = rows.reduce(0.0) { $0 + $1.result.signal }
        let noise = rows.reduce(0.0) { $0 + $1.result.noise }
        let outputs = rows.compactMap(\.result.outputError)
        let total = LayerQuantization(
            canonical: "total", tensor: "", scheme: "\(rows.count) layers",
            bitsPerWeight: Double(rows.reduce(0) { $0 + $1.bytes }) * 8 / Double(max(count, 1)),
            weightMSE: noise / Double(max(count, 1)), sqnr: noise > 0 ? 10 * log10(signal / noise) : .infinity,
            maxError: rows.map(\.result.maxError).max() ?? 0, signal: signal, noise: noise, count: count,
            outputError: outputs.isEmpty ? nil : outputs.reduce(0, +) / Double(outputs.count))
        let header = ["layer", "scheme", "bits/w", "weight MSE", "SQNR dB", "max |err|", "output err"]
        func cells(_ name: String, _ r: LayerQuantization) -> [String] {
            [name, r.scheme, fmt(r.bitsPerWeight, 3), String(format: "%.3e", r.weightMSE), fmt(r.sqnr, 2), String(format: "%.4g", r.maxError),
             r.outputError.map { fmt($0 * 100, 3) + "%" } ?? "-"]
        }
        let table = [header] + rows.map { cells($0.layer, $0.result) } + [cells("total", total)]
        let widths = header.indices.map { column in table.map { $0[column].count }.max() ?? 0 }
        var lines: [String] = []
        for (index, line) in table.enumerated() {
            let text = line.indices.map { column in
                column < 2 ? line[column].padding(toLength: widths[column], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[column] - line[column].count) + line[column]
            }
            if index == table.count - 1 { lines.append(String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1))) }
            lines.append(text.joined(separator: "  "))
        }
        // The bars: the output error where it was measured, else the relative weight error.
        let useOutput = rows.contains { $0.result.outputError != nil }
        let errors = rows.map { useOutput ? ($0.result.outputError ?? 0) : relativeError($0.result) }
        let largest = errors.filter(\.isFinite).max() ?? 0
        let bars: [String?] = errors.map { TerminalChart.bar($0, maximum: largest) } + [nil, nil]
        let chartHeader = useOutput ? "output error, to the worst" : "‖W − Ŵ‖ / ‖W‖, to the worst"
        for line in TerminalChart.besides(lines, header: chartHeader, bars: bars, colour: session.colour) { session.output(line + "\n") }
        func record(_ name: String, _ r: LayerQuantization) -> Value {
            var fields: [(String, Value)] = [
                ("layer", .string(name)), ("scheme", .string(r.scheme)), ("bits_per_weight", .number(r.bitsPerWeight)),
                ("weight_mse", .number(r.weightMSE)), ("sqnr_db", .number(r.sqnr)), ("max_error", .number(r.maxError)),
            ]
            if let error = r.outputError { fields.append(("output_error", .number(error))) }
            return .record(Record(fields))
        }
        return .record(Record([("report", .string("quant")), ("layers", .list(rows.map { record($0.layer, $0.result) })), ("total", record("total", total))]))
    }

    /// `report html FILE`: the session's page.
    static func html(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        guard invocation.isGiven("pattern") else { throw CommandError.invalidArgument("pattern", "report html needs the file to write, as report html out/report.html") }
        let path = Session.expandTilde(try invocation.text("pattern"))
        try checkReportPath(path, loaded: session.workspace.loaded, overwrite: invocation.has("overwrite"))
        let page = try HTMLReport.render(session, title: invocation["title"]?.text)
        try AtomicWrite.write(Data(page.utf8), to: path, protecting: session.workspace.loaded.map { [$0.checkpoint.path] } ?? [])
        let sections = HTMLReport.sectionIDs(page)
        session.output("wrote \(path): \(sections.isEmpty ? "nothing was measured" : sections.joined(separator: ", ")), \(InspectFormatting.humanBytes(page.utf8.count))\n")
        return .record(Record([
            ("path", .string(path)), ("bytes", .number(Double(page.utf8.count))), ("sections", .list(sections.map { .string($0) })),
        ]))
    }

    /// Refuses a report path whose folder is missing, that is not a file, that is one of the
    /// loaded model's files, or that holds something other than a qs report (without `overwrite`).
    static func checkReportPath(_ path: String, loaded: LoadedModel?, overwrite: Bool) throws {
        guard !path.isEmpty, !path.hasSuffix("/") else { throw CommandError.invalidArgument("pattern", "'\(path)' is a folder name; give the file to write, as out/report.html") }
        let parent = (path as NSString).deletingLastPathComponent
        let folder = parent.isEmpty ? "." : parent
        switch FileAccess.kind(folder) {
        case .directory: break
        case .missing: throw CommandError.invalidArgument("pattern", "the folder \(folder) does not exist (for \(path)); make it first")
        default: throw CommandError.invalidArgument("pattern", "\(folder) is not a folder (for \(path))")
        }
        if let loaded { try AtomicWrite.refuseOverwriting(path, protecting: [loaded.checkpoint.path]) }
        let kind = FileAccess.kind(path)
        if kind == .missing { return }
        guard kind == .regular else { throw CommandError.invalidArgument("pattern", "\(path) exists and is not a file") }
        if overwrite { return }
        guard HTMLReport.isReport(path) else {
            throw CommandError.invalidArgument("pattern", "\(path) already exists and is not a qs report; add overwrite to replace it, or choose another name")
        }
    }

    /// The quantized layers among `entries`, each measured against the values it was quantized
    /// from (the output error is left for a calibration set to fill in).
    static func quantRows(_ entries: [LayerNames.Entry], loaded: LoadedModel, isCancelled: () -> Bool) throws -> [Row] {
        let store = loaded.weights
        var rows: [Row] = []
        for entry in entries where try store.weight(entry.weight).isQuantized {
            if isCancelled() { throw EngineError.cancelled }
            let weight = try store.weight(entry.weight)
            let start = try ModelQuantizer.startingValues(store, entry.weight)
            let result = try ModelQuantizer.measure(entry, original: start.values, quantized: weight, scheme: weight.formName)
            rows.append(Row(layer: entry.canonical, result: result, bytes: weight.byteCount))
        }
        return rows
    }

    /// Worst first: by output error when both have one, else by SQNR.
    static func worseFirst(_ a: LayerQuantization, _ b: LayerQuantization) -> Bool {
        switch (a.outputError, b.outputError) {
        case (let x?, let y?) where x != y: return x > y
        case (.some, nil): return true
        case (nil, .some): return false
        default: return a.sqnr < b.sqnr
        }
    }

    /// ‖W − Ŵ‖ / ‖W‖, from the SQNR.
    static func relativeError(_ r: LayerQuantization) -> Double {
        r.signal > 0 ? (r.noise / r.signal).squareRoot() : (r.noise > 0 ? .infinity : 0)
    }

    /// `report sparsity`: the pruned layers among `matched`, in model order, and the totals.
    static func sparsity(_ matched: [LayerNames.Entry], loaded: LoadedModel, session: Session) throws -> Value {
        let rows = try Session.sparsityRows(loaded, entries: matched)
        guard !rows.isEmpty else { throw CommandError.invalidArgument("pattern", "matches no pruned layer of \(loaded.name): prune some first") }
        let zeros = rows.reduce(0) { $0 + $1.zeros }
        let params = rows.reduce(0) { $0 + $1.params }
        let requested = Set(rows.map(\.requested))
        let total = (layer: "total", requested: requested.count == 1 ? requested.first! : "mixed", zeros: zeros, params: params)
        let all = rows + [total]
        let table = [["layer", "asked", "sparsity", "weights", "pruned"]] + all.map { row in
            [row.layer, row.requested, fmt(Double(row.zeros) / Double(max(row.params, 1)) * 100, 2) + "%", String(row.params), String(row.zeros)]
        }
        let text = Session.alignedTable(table, leftColumns: [0, 1])
        var lines = text.split(separator: "\n").map(String.init)
        lines.insert("  " + String(repeating: "-", count: max(0, (lines.first?.count ?? 2) - 2)), at: lines.count - 1)
        // The bars: each layer's sparsity on a scale from none to all of its weights.
        let bars: [String?] = rows.map { TerminalChart.bar(Double($0.zeros) / Double(max($0.params, 1)), maximum: 1, width: 20) } + [nil, nil]
        for line in TerminalChart.besides(lines, header: "pruned, of 100%", bars: bars, colour: session.colour) { session.output(line + "\n") }
        func record(_ row: (layer: String, requested: String, zeros: Int, params: Int)) -> Value {
            .record(Record([
                ("layer", .string(row.layer)), ("requested", .string(row.requested)),
                ("sparsity", .number(Double(row.zeros) / Double(max(row.params, 1)))), ("params", .number(Double(row.params))),
                ("pruned", .number(Double(row.zeros))),
            ]))
        }
        return .record(Record([("report", .string("sparsity")), ("layers", .list(rows.map(record))), ("total", record(total))]))
    }
}

extension Session {
    /// The layers among `entries` whose weights have a pruning mask: what was asked (`-` when
    /// not known), elements pruned, elements.
    static func sparsityRows(_ loaded: LoadedModel, entries: [LayerNames.Entry]) throws -> [(layer: String, requested: String, zeros: Int, params: Int)] {
        try entries.compactMap { entry in
            guard let mask = try loaded.weights.weight(entry.weight).mask else { return nil }
            return (entry.canonical, mask.requested ?? "-", mask.count - mask.keptCount, mask.count)
        }
    }
}
