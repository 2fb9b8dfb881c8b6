import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import QSEngine
@testable import QSInterpreter
@testable import QSLanguage

/// `report html`, the page `save` writes beside the model, and the bars beside the terminal
/// tables: the page parses as XML with valid SVG, every plot has its axes, labels and one mark
/// per data point of a session with known records, bad paths are refused, and the terminal
/// bars match their golden text with and without colour.
@Suite struct ReportTests {
    /// An element of a parsed page: its name, attributes, and the charts it lies inside.
    struct Element {
        var name: String
        var attributes: [String: String]
        /// The index of the `svg` it lies in, if any.
        var chart: Int?
        var classes: Set<String> { Set((attributes["class"] ?? "").split(separator: " ").map(String.init)) }
    }

    /// Parses a page as XML (throwing on any well-formedness error) into its elements in order.
    final class Page: NSObject, XMLParserDelegate {
        var elements: [Element] = []
        var charts: [Element] = []
        var text = ""
        private var svgDepth = 0
        private var error: Error?

        init(_ html: String) throws {
            super.init()
            // XMLParser does not read HTML's doctype as a DTD it should fetch; drop the line.
            let body = html.hasPrefix("<!DOCTYPE html>\n") ? String(html.dropFirst(16)) : html
            let parser = XMLParser(data: Data(body.utf8))
            parser.delegate = self
            guard parser.parse() else { throw parser.parserError ?? error ?? CocoaError(.fileReadCorruptFile) }
        }

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            if name == "svg" {
                #expect(svgDepth == 0, "an svg inside an svg")
                charts.append(Element(name: name, attributes: attributes, chart: nil))
                svgDepth += 1
            } else if svgDepth > 0 {
                svgDepth += 1
            }
            elements.append(Element(name: name, attributes: attributes, chart: svgDepth > 0 ? charts.count - 1 : nil))
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            if svgDepth > 0 { svgDepth -= 1 }
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

        /// The elements of chart `index` with class `cls`.
        func count(_ cls: String, in index: Int) -> Int { elements.filter { $0.chart == index && $0.classes.contains(cls) }.count }

        /// Charts of a kind (`scatter`, `bars`, `lines`, `map`), by index, in page order.
        func charts(_ kind: String) -> [Int] { charts.indices.filter { charts[$0].attributes["data-kind"] == kind } }
    }

    static func list(_ value: Value?) -> [Value] {
        if case .list(let items)? = value { return items }
        return []
    }

    /// A session of the tiny Llama with every kind of record a report draws.
    @Test func pageOfAKnownSessionHasEveryPlotWithItsMarks() throws {
        let (session, folder, text) = try GPTQCommandTests.session("samples=4 seqlen=16")
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("qs-report-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: out) }
        let t = text.path
        let page = out.appendingPathComponent("report.html").path
        _ = try session.run("""
            eval ppl "\(t)" ctx=16 tokens=64
            prune layer.*.mlp.* 30%
            quantize layer.* bits=8 group=16
            eval ppl "\(t)" ctx=16 tokens=64
            quantize layer.* bits=4 group=16
            eval kld "\(t)" ctx=16 tokens=64
            eval kld "\(t)" ctx=16 tokens=64
            let s = sensitivity layer.* bits=3 group=16 samples=2 seqlen=16
            finetune "\(t)" steps=3 batch=1 seqlen=16 warmup=1
            """, name: "t.qs")
        let record = try #require(try session.run("report html \"\(page)\" title=\"A <tiny> & \\\"quoted\\\" report\"", name: "t.qs").record)
        let loaded = try #require(session.workspace.loaded)
        let html = try String(contentsOfFile: page, encoding: .utf8)
        let parsed = try Page(html)
        #expect(html.hasPrefix("<!DOCTYPE html>\n<html lang=\"en\">"))
        // Self-contained: no scripts, nothing fetched.
        #expect(!parsed.elements.contains { ["script", "link", "img", "iframe"].contains($0.name) })
        #expect(!parsed.elements.contains { $0.attributes.contains { key, value in ["src", "href"].contains(key) && !value.hasPrefix("#") } })
        #expect(parsed.elements.first { $0.name == "title" }.map { _ in parsed.text.contains("A <tiny> & \"quoted\" report") } == true)
        let ids = Self.list(record["sections"]).compactMap(\.text)
        #expect(ids == ["summary", "trade-off", "evaluations", "quantization", "bits", "sensitivity", "sparsity", "training", "recipe"])

        // Every chart: axes, axis labels, a title, and valid SVG attributes.
        for (index, chart) in parsed.charts.enumerated() {
            #expect(chart.attributes["xmlns"] == "http://www.w3.org/2000/svg")
            #expect(chart.attributes["viewBox"]?.split(separator: " ").count == 4)
            #expect(parsed.elements.contains { $0.chart == index && $0.classes.contains("axis") })
            #expect(parsed.count("axis-label", in: index) >= 2, "chart \(index) (\(chart.attributes["data-kind"] ?? "")) lacks its axis labels")
            #expect(parsed.elements.contains { $0.chart == index && $0.name == "title" })
            for element in parsed.elements where element.chart == index {
                for key in ["x", "y", "cx", "cy", "width", "height", "r", "x1", "x2", "y1", "y2"] {
                    if let value = element.attributes[key] { #expect(Double(value)?.isFinite == true, "\(element.name) \(key)=\(value)") }
                }
            }
        }
        // Size against perplexity: the model as loaded, after int8, after int4 (the second kld
        // evaluation measured the same model, so no second dot), with the front and a legend.
        let scatter = try #require(parsed.charts("scatter").first)
        #expect(parsed.count("mark", in: scatter) == 3)
        #expect(parsed.count("point-label", in: scatter) == 3)
        #expect(parsed.count("front", in: scatter) == 1 && parsed.count("legend", in: scatter) == 1)
        // Bars: quantization error (one per quantized layer), sensitivity (one per unit), sparsity
        // (one per pruned layer, each with the tick of what was asked).
        let linear = loaded.model.names.entries.filter { if case .linear = $0.kind { true } else { false } }
        let bars = parsed.charts("bars")
        #expect(bars.count == 3)
        #expect(parsed.count("mark", in: bars[0]) == linear.count)
        let units = Self.list(try #require(session.globals.lookup("s")?.record)["units"])
        #expect(parsed.count("mark", in: bars[1]) == units.count && !units.isEmpty)
        let pruned = linear.filter { $0.canonical.contains(".mlp.") }
        #expect(parsed.count("mark", in: bars[2]) == pruned.count && parsed.count("target", in: bars[2]) == pruned.count)
        // The map of bits: a cell per block layer, each with its text.
        let map = try #require(parsed.charts("map").first)
        #expect(parsed.count("mark", in: map) == linear.count && parsed.count("cell-label", in: map) == linear.count)
        #expect(parsed.count("swatch", in: map) == HTMLReport.bitsLegend.count)
        // The loss curve: a dot per step.
        let lines = try #require(parsed.charts("lines").first)
        #expect(parsed.count("mark", in: lines) == 3)
        // The recipe: every command with its line.
        #expect(parsed.elements.filter { $0.name == "li" }.count >= 9 + 9)
        #expect(parsed.text.contains("t.qs:2") && parsed.text.contains("prune layer.*.mlp.* 30%"))
        #expect(record["bytes"] == .number(Double(html.utf8.count)))
    }

    /// The autoquant plan as a map (a cell per planned layer, coloured by its bits, naming them)
    /// and `tune blocks` as two lines (before, after) of a dot per block.
    @Test func autoquantPlanAndBlockTuningAreDrawn() throws {
        let (session, folder, _) = try GPTQCommandTests.session("samples=4 seqlen=16")
        defer { try? FileManager.default.removeItem(at: folder) }
        let page = FileManager.default.temporaryDirectory.appendingPathComponent("qs-report-\(UUID().uuidString).html").path
        defer { try? FileManager.default.removeItem(atPath: page) }
        let plan = Self.list(try #require(try session.run("autoquant layer.* target=6 candidates=[4, 8] group=16 samples=4", name: "t.qs").record)["plan"])
        let tune = Self.list(try #require(try session.run("tune blocks steps=2 batch=1", name: "t.qs").record)["blocks"])
        _ = try session.run("report html \"\(page)\"", name: "t.qs")
        let parsed = try Page(try String(contentsOfFile: page, encoding: .utf8))
        // tune blocks changed the weights after autoquant, so the map shows the layers as held.
        let held = try #require(parsed.charts("map").first)
        #expect(parsed.count("mark", in: held) == plan.count && !plan.isEmpty)
        let lines = try #require(parsed.charts("lines").first)
        #expect(parsed.count("mark", in: lines) == 2 * tune.count && parsed.count("series", in: lines) == 2)
        // Straight after autoquant, the map is its plan, with the bits written in the cells.
        _ = try session.run("reset\nautoquant layer.* target=6 candidates=[4, 8] group=16 samples=4\nreport html \"\(page)\"", name: "t.qs")
        let again = try Page(try String(contentsOfFile: page, encoding: .utf8))
        let map = try #require(again.charts("map").first)
        #expect(again.count("mark", in: map) == plan.count)
        let cells = again.elements.filter { $0.chart == map && $0.classes.contains("cell-label") }.count
        #expect(cells == plan.count)
        #expect(again.text.contains("The autoquant plan"))
        let bits = Set(plan.compactMap { $0.record?["bits"]?.number })
        #expect(bits.isSubset(of: [4, 8]))
    }

    @Test func emptySessionsSayNothingWasMeasured() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("qs-report-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: out) }
        let bare = Session(output: { _ in })
        _ = try bare.run("report html \"\(out.path)/a.html\"", name: "t.qs")
        let a = try Page(try String(contentsOfFile: out.path + "/a.html", encoding: .utf8))
        #expect(a.text.contains("No model was loaded") && a.charts.isEmpty)
        let (session, folder, _) = try GPTQCommandTests.session(nil)
        defer { try? FileManager.default.removeItem(at: folder) }
        let record = try #require(try session.run("report html \"\(out.path)/b.html\"", name: "t.qs").record)
        let b = try Page(try String(contentsOfFile: out.path + "/b.html", encoding: .utf8))
        #expect(b.text.contains("Nothing was measured") && b.charts.isEmpty)
        #expect(Self.list(record["sections"]).compactMap(\.text) == ["recipe"])
    }

    @Test func badReportPathsAreRefused() throws {
        let (session, folder, _) = try GPTQCommandTests.session(nil)
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("qs-report-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: out) }
        #expect((CommandContractTests.error(session, "report html \"\(out.path)/missing/r.html\"") ?? "").contains("does not exist"))
        #expect((CommandContractTests.error(session, "report html") ?? "").contains("needs the file"))
        // The loaded model's own files, and its folder.
        #expect((CommandContractTests.error(session, "report html \"\(folder.path)/config.json\" overwrite") ?? "").contains("loaded model"))
        #expect((CommandContractTests.error(session, "report html \"\(folder.path)/new.html\"") ?? "").contains("loaded model"))
        #expect(try String(contentsOf: folder.appendingPathComponent("config.json"), encoding: .utf8).hasPrefix("{"))
        // A file that is not a report needs overwrite; a report of qs is replaced.
        let notes = out.appendingPathComponent("notes.html")
        try Data("my notes".utf8).write(to: notes)
        #expect((CommandContractTests.error(session, "report html \"\(notes.path)\"") ?? "").contains("not a qs report"))
        #expect(try String(contentsOf: notes, encoding: .utf8) == "my notes")
        _ = try session.run("report html \"\(notes.path)\" overwrite", name: "t.qs")
        #expect(HTMLReport.isReport(notes.path))
        _ = try session.run("report html \"\(notes.path)\"", name: "t.qs")
        #expect((CommandContractTests.error(session, "report html \"\(out.path)\"") ?? "").contains("not a file"))
    }

    @Test func saveWritesTheReportBesideTheModel() throws {
        let (session, folder, text) = try GPTQCommandTests.session(nil)
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("qs-report-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let record = try #require(try session.run("""
            quantize layer.* bits=4 group=16
            eval ppl "\(text.path)" ctx=16 tokens=64
            save "\(out.path)" format=compressed-tensors
            """, name: "t.qs").record)
        #expect(Self.list(record["files"]).contains(.string("report.html")) && Self.list(record["files"]).contains(.string("qs.json")))
        let page = try Page(try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8))
        #expect(page.charts("scatter").count == 1 && page.charts("bars").count == 1)
        #expect(page.text.contains("int4 g16"))
    }

    @Test func markupEscapesWhatItHolds() throws {
        var root = Markup("div", [("title", "a \"b\" & <c>\nd")])
        root.add(text: "x < y && z > 1; &amp; \u{1}")
        root.add(Markup("br"))
        let rendered = root.rendered
        #expect(rendered == "<div title=\"a &quot;b&quot; &amp; &lt;c&gt;&#10;d\">x &lt; y &amp;&amp; z &gt; 1; &amp;amp; \u{FFFD}<br/></div>")
        let page = try Page(rendered)
        #expect(page.elements.first?.attributes["title"] == "a \"b\" & <c>\nd")
        #expect(page.text == "x < y && z > 1; &amp; \u{FFFD}")
    }

    @Test func paretoFrontKeepsThePointsNothingBeats() {
        func p(_ x: Double, _ y: Double) -> Charts.Point { Charts.Point(x: x, y: y, label: "", tooltip: "\(x),\(y)") }
        let points = [p(100, 40), p(50, 60), p(60, 55), p(70, 58), p(30, 200), p(50, 70)]
        #expect(Charts.paretoFront(points, higherIsBetter: false) == [4, 1, 2, 0])
        #expect(Charts.paretoFront([p(1, 0.9), p(2, 0.95), p(3, 0.94)], higherIsBetter: true) == [0, 1])
        let scale = Charts.Scale(values: [41, 98], start: 0, end: 100, log: true)
        #expect(scale.ticks.allSatisfy { $0 >= 38 && $0 <= 105 } && scale.ticks.count >= 3)
        #expect(Charts.Scale(values: [0.5, 20838], start: 0, end: 100, log: true).ticks.contains(1000))
    }

    @Test func terminalBarsInEighths() {
        #expect(TerminalChart.bar(1, maximum: 1, width: 4) == "████")
        #expect(TerminalChart.bar(0.5, maximum: 1, width: 4) == "██")
        #expect(TerminalChart.bar(1.0 / 16, maximum: 1, width: 4) == "▎")
        #expect(TerminalChart.bar(0.3, maximum: 1, width: 4) == "█▎")
        #expect(TerminalChart.bar(1e-9, maximum: 1, width: 4) == "▏")
        #expect(TerminalChart.bar(0, maximum: 1, width: 4) == "")
        #expect(TerminalChart.paint("██", colour: true) == "\u{1B}[36m██\u{1B}[0m")
        #expect(TerminalChart.paint("██", colour: false) == "██")
    }

    /// `report sparsity` on the tiny Llama, in golden text, plain and coloured, with the same
    /// record both ways.
    @Test func sparsityChartGolden() throws {
        var outputs: [String] = []
        var records: [Value] = []
        for colour in [false, true] {
            let (session, folder, _) = try GPTQCommandTests.session(nil)
            defer { try? FileManager.default.removeItem(at: folder) }
            var printed = ""
            session.output = { printed += $0 }
            session.colour = colour
            _ = try session.run("prune layer.0.mlp.* 30%\nprune layer.1.mlp.up 2:4", name: "t.qs")
            printed = ""
            records.append(try session.run("report sparsity", name: "t.qs"))
            outputs.append(printed)
        }
        let golden = """
              layer             asked  sparsity  weights  pruned  pruned, of 100%
              layer.0.mlp.gate  30%      29.98%     2048     614  ██████
              layer.0.mlp.up    30%      29.98%     2048     614  ██████
              layer.0.mlp.down  30%      29.98%     2048     614  ██████
              layer.1.mlp.up    2:4      50.00%     2048    1024  ██████████
              --------------------------------------------------
              total             mixed    34.99%     8192    2866

            """
        #expect(outputs[0] == golden)
        let paint = { (bar: String) in "\u{1B}[36m\(bar)\u{1B}[0m" }
        let coloured = golden.replacingOccurrences(of: "  ██████████\n", with: "  " + paint("██████████") + "\n")
            .replacingOccurrences(of: "  ██████\n", with: "  " + paint("██████") + "\n")
        #expect(outputs[1] == coloured)
        #expect(records[0] == records[1])
    }

    /// `report quant` and `sensitivity`: a bar per row, the worst one full, colour only when asked.
    @Test func quantAndSensitivityBars() throws {
        for colour in [false, true] {
            let (session, folder, _) = try GPTQCommandTests.session("samples=4 seqlen=16")
            defer { try? FileManager.default.removeItem(at: folder) }
            var printed = ""
            session.output = { printed += $0 }
            session.colour = colour
            _ = try session.run("quantize layer.* bits=3 group=16", name: "t.qs")
            for command in ["report quant", "sensitivity layer.* bits=2 group=16 samples=2 seqlen=16"] {
                printed = ""
                _ = try session.run(command, name: "t.qs")
                let lines = printed.split(separator: "\n").map(String.init)
                let withBars = lines.filter { $0.contains("█") || $0.contains("▏") }
                let loaded = try #require(session.workspace.loaded)
                let linear = loaded.model.names.entries.filter { if case .linear = $0.kind { true } else { false } }
                #expect(withBars.count == linear.count, "\(command)")
                let first = try #require(withBars.first)
                #expect(first.contains(String(repeating: "█", count: 24)), "\(command): the worst gets the whole bar")
                #expect(printed.contains("\u{1B}[") == colour, "\(command)")
            }
        }
    }
}
