import Foundation
import QSTestSupport
import Testing
@testable import QSEngine
@testable import QSInterpreter
@testable import QSLanguage

/// `sensitivity` and `autoquant` on the tiny Llama with its WordPiece tokenizer: a ranking in
/// order whose scores are what quantizing a unit alone does, weights as they were afterwards,
/// plans within the target that predict less damage than the uniform width, and each bad
/// input at its option before any work.
@Suite struct SensitivityCommandTests {
    static func session(_ calibrate: String? = "samples=8 seqlen=32") throws -> (Session, URL, URL) {
        try GPTQCommandTests.session(calibrate)
    }

    static func units(_ record: Record) throws -> [Record] {
        guard case .list(let items)? = record["units"] else { throw CommandError.failed("no units") }
        return try items.map { try #require($0.record) }
    }

    static func linearValues(_ session: Session) throws -> [[Float]] {
        let loaded = try #require(session.workspace.loaded)
        return try loaded.model.names.entries.filter { $0.kind.isMatrix }.map { try loaded.weights.floats($0.weight) }
    }

    @Test func unitsAreRankedMostSensitiveFirstAndTheWeightsStayAsTheyWere() throws {
        let (session, folder, _) = try Self.session()
        defer { try? FileManager.default.removeItem(at: folder) }
        let before = try Self.linearValues(session)
        for (by, count, example) in [("layer", 14, "layer.1.mlp.down"), ("block", 2, "layer.0.*"), ("type", 7, "layer.*.attn.q")] {
            for metric in ["kld", "ppl"] {
                let record = try #require(try session.run("sensitivity bits=3 group=16 samples=4 by=\(by) metric=\(metric)", name: "t.qs").record)
                let units = try Self.units(record)
                #expect(units.count == count, "by=\(by)")
                #expect(units.contains { $0["unit"] == .string(example) }, "by=\(by)")
                let scores = units.compactMap { $0["score"]?.number }
                #expect(scores.count == count && scores == scores.sorted(by: >), "by=\(by) metric=\(metric): \(scores)")
                #expect(units.map { $0["rank"] } == (1 ... count).map { .number(Double($0)) })
                #expect(units.allSatisfy { ($0["kld"]?.number ?? -1) > 0 && $0["bits_per_weight"] == .number(3 + 16.0 / 16) })
                #expect(record["tokens"] == .number(4 * 31) && record["metric"] == .string(metric) && record["scheme"] == .string("int3 g16 sym"))
                #expect(units.map { $0["layers"]?.number ?? 0 }.reduce(0, +) == 14)
            }
        }
        #expect(session.workspace.loaded?.isModified == false)
        #expect(try Self.linearValues(session) == before)
    }

    /// The score of a unit is what quantizing it alone does, recomputed from full logits: the
    /// KL divergence against the model as it was, and the change of perplexity.
    @Test(arguments: [("layer", "layer.0.mlp.down", "layer.0.mlp.down"), ("layer", "layer.1.attn.v", "layer.1.attn.v"), ("block", "layer.1.*", "layer.1.*"), ("type", "layer.*.mlp.up", "layer.*.mlp.up")])
    func aUnitQuantizedAloneGivesItsScore(by: String, unit: String, pattern: String) throws {
        let (session, folder, _) = try Self.session()
        defer { try? FileManager.default.removeItem(at: folder) }
        let loaded = try #require(session.workspace.loaded)
        let model = try #require(loaded.model as? CausalLanguageModel)
        let windows = Array(try #require(session.workspace.calibration?.drawn?.set.windows).prefix(3))
        let record = try #require(try session.run("sensitivity bits=2 group=16 samples=3 by=\(by)", name: "t.qs").record)
        let row = try #require(try Self.units(record).first { $0["unit"] == .string(unit) })
        let reference = try windows.map { try model.forward($0) }
        _ = try session.run("quantize \(pattern) bits=2 group=16", name: "t.qs")
        var kld = 0.0
        var nll = 0.0
        var baseNLL = 0.0
        var tokens = 0
        for (w, window) in windows.enumerated() {
            let logits = try model.forward(window)
            for position in 0 ..< window.count - 1 {
                let p = logSoftmax(reference[w], row: position)
                let q = logSoftmax(logits, row: position)
                for i in p.indices { kld += Foundation.exp(p[i]) * (p[i] - q[i]) }
                nll -= q[window[position + 1]]
                baseNLL -= p[window[position + 1]]
                tokens += 1
            }
        }
        kld /= Double(tokens)
        let ppl = Foundation.exp(nll / Double(tokens))
        let basePPL = Foundation.exp(baseNLL / Double(tokens))
        let measured = try #require(row["kld"]?.number)
        #expect(abs(measured - kld) <= 1e-4 * kld, "\(unit): \(measured) against \(kld) from full logits")
        #expect(abs(try #require(row["ppl"]?.number) - ppl) <= 1e-5 * ppl)
        #expect(abs(try #require(record["base_ppl"]?.number) - basePPL) <= 1e-5 * basePPL)
        #expect(try #require(row["score"]?.number) == measured)
        let byPPL = try #require(try session.run("reset\nsensitivity bits=2 group=16 samples=3 by=\(by) metric=ppl", name: "t.qs").record)
        let score = try #require(try Self.units(byPPL).first { $0["unit"] == .string(unit) }?["score"]?.number)
        #expect(abs(score - (ppl - basePPL)) <= 1e-4 * abs(ppl - basePPL) + 1e-9)
    }

    @Test func sensitivityOnATextUsesConsecutiveWindows() throws {
        let (session, folder, text) = try Self.session(nil)
        defer { try? FileManager.default.removeItem(at: folder) }
        let record = try #require(try session.run("sensitivity layer.0.* group=16 text=\"\(text.path)\" samples=3 seqlen=16", name: "t.qs").record)
        #expect(record["tokens"] == .number(3 * 15))
        #expect(try Self.units(record).count == 7)
    }

    /// Uniform int4 g16's bits per weight as the target: the plan fits it and predicts no more
    /// damage than the uniform plan; the layers hold the widths of the plan.
    @Test(arguments: ["rtn", "gptq"])
    func autoquantMeetsTheTargetWithNoMoreDamageThanUniform(method: String) throws {
        let (session, folder, _) = try Self.session()
        defer { try? FileManager.default.removeItem(at: folder) }
        let int4 = try #require(try session.run("quantize layer.* bits=4 group=16", name: "t.qs").record)
        let target = try #require(int4["layer_bits_per_weight"]?.number)
        _ = try session.run("reset", name: "t.qs")
        for (goal, candidates) in [(target, "[2, 3, 4, 8]"), (4.5, "[3, 8, 4]"), (7.0, "[2, 4, 8]")] {
            let record = try #require(try session.run(
                "reset\nautoquant target=\(goal) candidates=\(candidates) group=16 samples=4 method=\(method)", name: "t.qs").record)
            let achieved = try #require(record["layer_bits_per_weight"]?.number)
            #expect(achieved <= goal + 1e-12, "target \(goal): \(achieved)")
            guard case .list(let plan)? = record["plan"] else { Issue.record("no plan"); continue }
            #expect(plan.count == 14)
            let forms = try GPTQCommandTests.layerForms(session)
            for item in plan {
                let entry = try #require(item.record)
                let layer = try #require(entry["layer"]?.text)
                let bits = try #require(entry["bits"]?.number)
                #expect(forms[layer] == "int\(Int(bits)) g16", "\(layer)")
            }
            let predicted = try #require(record["predicted_damage"]?.number)
            let summed = plan.compactMap { $0.record?["damage"]?.number }.reduce(0, +)
            #expect(abs(predicted - summed) <= 1e-9 * summed)
            if let uniformKLD = record["uniform_damage"]?.number {
                #expect(predicted <= uniformKLD * (1 + 1e-12), "target \(goal): \(predicted) against uniform \(uniformKLD)")
            }
            if goal == target { #expect(record["uniform_bits"] == .number(4)) }
        }
    }

    /// Ctrl-C at any point of an autoquant (measuring, or applying) leaves the model as it was.
    @Test func cancelledAutoquantLeavesTheModelAsItWas() throws {
        let (session, folder, _) = try Self.session()
        defer { try? FileManager.default.removeItem(at: folder) }
        let before = try Self.linearValues(session)
        final class Counter: @unchecked Sendable { var polls = 0; var stopAt = Int.max }
        let counter = Counter()
        session.isCancelled = {
            counter.polls += 1
            return counter.polls >= counter.stopAt
        }
        _ = try session.run("autoquant target=4 group=16 samples=2\nreset", name: "t.qs")
        let total = counter.polls
        #expect(total > 20)
        for stop in [1, total / 3, total * 2 / 3, total - 1] {
            counter.polls = 0
            counter.stopAt = stop
            let error = try #require(CommandContractTests.error(session, "autoquant target=4 group=16 samples=2"), "stopped at poll \(stop)")
            #expect(error.contains("cancelled"), "\(error)")
            #expect(session.workspace.loaded?.isModified == false)
            #expect(try Self.linearValues(session) == before)
        }
    }

    @Test(arguments: [
        ("autoquant target=1 group=16", "t.qs:1:11:", "below the narrowest candidate"),
        ("autoquant target=9.5 group=16", "t.qs:1:11:", "above the widest candidate"),
        ("autoquant candidates=[3, 4]", "t.qs:1:1:", "needs target="),
        ("autoquant target=4 candidates=[4]", "t.qs:1:20:", "two widths or more"),
        ("autoquant target=4 candidates=[3, 9]", "t.qs:1:20:", "not a width of 1 to 8"),
        ("autoquant target=4 candidates=[3, 3, 4]", "t.qs:1:20:", "listed twice"),
        ("autoquant target=4 candidates=[1, 4] method=gptq", "t.qs:1:20:", "2 to 8 bits"),
        ("autoquant target=4 damp=0.1", "t.qs:1:20:", "option of method=gptq"),
        ("autoquant target=4 group=33", "t.qs:1:20:", "wider than the rows"),
        ("autoquant embed target=4", "t.qs:1:11:", "linear layers of the blocks"),
        ("autoquant target=4 samples=9", "t.qs:1:20:", "has 8 windows"),
        ("sensitivity bits=9", "t.qs:1:18:", "between 1 and 8"),
        ("sensitivity group=100", "t.qs:1:13:", "wider than the rows"),
        ("sensitivity metric=mse", "t.qs:1:20:", "allowed values: kld, ppl, cosine"),
        ("sensitivity metric=cosine", "t.qs:1:13:", "scores an encoder's outputs"),
        ("sensitivity by=head", "t.qs:1:16:", "allowed values: layer, block, type"),
        ("sensitivity text=\"/no/such/text.txt\"", "t.qs:1:13:", "no/such/text.txt"),
        ("sensitivity samples=9", "t.qs:1:13:", "has 8 windows"),
        ("sensitivity bits=1 asym", "t.qs:1:13:", "no zero point"),
        ("sensitivity layer.9.*", "t.qs:1:13:", "matches no layer"),
    ])
    func badInputIsADiagnosticAtItsOption(source: String, place: String, phrase: String) throws {
        let (session, folder, _) = try Self.session()
        defer { try? FileManager.default.removeItem(at: folder) }
        let polls = PollCounter()
        session.isCancelled = { polls.count += 1; return false }
        let error = try #require(CommandContractTests.error(session, source))
        #expect(error.hasPrefix(place), "\(error)")
        #expect(error.contains(phrase), "\(error)")
        #expect(session.workspace.loaded?.isModified == false)
        // No work started: nothing long ran long enough to ask about Ctrl-C.
        #expect(polls.count == 0, "\(source): \(polls.count) polls")
    }

    /// An encoder is measured on the direction of its output rows: the default metric, the
    /// only one it takes, every token scored, the ranking in order and the weights as they were.
    @Test func anEncoderIsScoredByTheCosineOfItsOutputs() throws {
        let (folder, text) = try GPTQCommandTests.model("bert")
        defer { try? FileManager.default.removeItem(at: folder) }
        let session = Session(output: { _ in })
        _ = try session.run("load \"\(folder.path)\"\ncalibrate \"\(text.path)\" samples=4 seqlen=16", name: "t.qs")
        let before = try Self.linearValues(session)
        let record = try #require(try session.run("sensitivity bits=2 group=16", name: "t.qs").record)
        let units = try Self.units(record)
        #expect(record["metric"] == .string("cosine") && record["tokens"] == .number(4 * 16) && record["base_ppl"] == nil)
        let scores = units.compactMap { $0["score"]?.number }
        #expect(!scores.isEmpty && scores == scores.sorted(by: >) && scores.allSatisfy { $0 > 0 && $0 < 2 })
        #expect(units.allSatisfy { $0["cosine_loss"] == $0["score"] && $0["kld"] == nil })
        #expect(try Self.linearValues(session) == before)
        for metric in ["kld", "ppl"] {
            let error = try #require(CommandContractTests.error(session, "sensitivity metric=\(metric)"))
            #expect(error.hasPrefix("t.qs:1:13:") && error.contains("is an encoder (use cosine)"), "\(error)")
        }
    }

    @Test(arguments: ["sensitivity", "autoquant target=4"])
    func withoutACalibrationSetTheMessageSaysToCalibrate(source: String) throws {
        let (session, folder, _) = try Self.session(nil)
        defer { try? FileManager.default.removeItem(at: folder) }
        let error = try #require(CommandContractTests.error(session, source))
        #expect(error.contains("calibrate TEXT"), "\(error)")
        #expect(error.hasPrefix("t.qs:1:1:"), "\(error)")
    }

    @Test func recordsHaveOnlyDeclaredFields() throws {
        let (session, results) = CommandContractTests.session()
        let (folder, text) = try GPTQCommandTests.model()
        defer { try? FileManager.default.removeItem(at: folder) }
        _ = try session.run("""
            load "\(folder.path)"
            calibrate "\(text.path)" samples=4 seqlen=32
            sensitivity group=16 by=block
            autoquant target=4.5 group=16
            """, name: "t.qs")
        CommandContractTests.checkDeclared(results, in: session)
        #expect(Set(results.records.map(\.command)).isSuperset(of: ["sensitivity", "autoquant"]))
    }
}

final class PollCounter: @unchecked Sendable {
    var count = 0
}
