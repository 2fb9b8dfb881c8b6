import Foundation
import QSEngine
import QSLanguage

/// `report quant`: what quantization did to each layer, worst first.
enum ReportCommand: Command {
    static let spec = CommandSpec(
        "report", summary: "Report what compression did to each layer: scheme, size and error, worst first.",
        discussion: """
            `report quant [PATTERN]` lists every quantized (or cast) layer the pattern matches: its scheme, bits per weight (scales and zero points counted), the mean squared and the largest absolute error of its weights against the values it was quantized from, the signal-to-quantization-noise ratio in dB, and, when a calibration set is there, the relative output error ‖XWᵀ − XŴᵀ‖ / ‖XWᵀ‖ on its calibration inputs in the model as it is now (the first `samples` windows). Worst first (by output error when there is one, else by SQNR), then the totals.
            `report sparsity [PATTERN]` lists every pruned layer the pattern matches in model order: the pruning asked for (50%, 2:4), the share of its weights its mask zeroes, its weights and how many are pruned, then the totals.
            """,
        positionals: [
            ArgumentSpec("what", .word, help: "what to report: quant or sparsity", required: true, allowed: ["quant", "sparsity"]),
            ArgumentSpec("pattern", .pattern, help: "the layers (default: all)", default: .word("*")),
        ],
        options: [ArgumentSpec("samples", .integer, help: "calibration windows for the output error", default: .number(32), range: 1...100_000)],
        resultFields: [
            ("layers", "a record per layer: for quant, worst first, layer, scheme, bits_per_weight, weight_mse, sqnr_db, max_error, output_error; for sparsity, in model order, layer, requested, sparsity, params, pruned"),
            ("total", "the same fields over all the layers listed"),
        ],
        examples: ["report quant", "report quant layer.*.mlp.*", "let r = report quant\nassert r.total.sqnr_db > 15", "report sparsity", "let s = report sparsity\nassert s.total.sparsity >= 0.5"])

    struct Row {
        var layer: String
        var result: LayerQuantization
        var bytes: Int
    }

    static func run(_ invocation: CommandInvocation, _ session: Session) throws -> Value {
        let loaded = try session.workspace.requireModel()
        let store = loaded.weights
        let matched = try Session.matchLayers(try invocation.glob("pattern"), in: loaded)
        if try invocation.text("what") == "sparsity" { return try sparsity(matched, loaded: loaded, session: session) }
        let quantized = try matched.filter { try store.weight($0.weight).isQuantized }
        guard !quantized.isEmpty else {
            throw CommandError.invalidArgument("pattern", "matches no quantized layer of \(loaded.name): quantize some first")
        }
        var rows: [Row] = []
        for entry in quantized {
            if session.isCancelled() { throw EngineError.cancelled }
            let weight = try store.weight(entry.weight)
            let start = try ModelQuantizer.startingValues(store, entry.weight)
            let result = try ModelQuantizer.measure(entry, original: start.values, quantized: weight, scheme: weight.formName)
            rows.append(Row(layer: entry.canonical, result: result, bytes: weight.byteCount))
        }
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
        rows.sort { a, b in
            switch (a.result.outputError, b.result.outputError) {
            case (let x?, let y?) where x != y: return x > y
            case (.some, nil): return true
            case (nil, .some): return false
            default: return a.result.sqnr < b.result.sqnr
            }
        }
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
        for (index, line) in table.enumerated() {
            let text = line.indices.map { column in
                column < 2 ? line[column].padding(toLength: widths[column], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[column] - line[column].count) + line[column]
            }
            if index == table.count - 1 { session.output(String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1)) + "\n") }
            session.output(text.joined(separator: "  ") + "\n")
        }
        func record(_ name: String, _ r: LayerQuantization) -> Value {
            var fields: [(String, Value)] = [
                ("layer", .string(name)), ("scheme", .string(r.scheme)), ("bits_per_weight", .number(r.bitsPerWeight)),
                ("weight_mse", .number(r.weightMSE)), ("sqnr_db", .number(r.sqnr)), ("max_error", .number(r.maxError)),
            ]
            if let error = r.outputError { fields.append(("output_error", .number(error))) }
            return .record(Record(fields))
        }
        return .record(Record([("layers", .list(rows.map { record($0.layer, $0.result) })), ("total", record("total", total))]))
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
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines.insert("  " + String(repeating: "-", count: max(0, (lines.first?.count ?? 2) - 2)), at: lines.count - 2)
        session.output(lines.joined(separator: "\n"))
        func record(_ row: (layer: String, requested: String, zeros: Int, params: Int)) -> Value {
            .record(Record([
                ("layer", .string(row.layer)), ("requested", .string(row.requested)),
                ("sparsity", .number(Double(row.zeros) / Double(max(row.params, 1)))), ("params", .number(Double(row.params))),
                ("pruned", .number(Double(row.zeros))),
            ]))
        }
        return .record(Record([("layers", .list(rows.map(record))), ("total", record(total))]))
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
