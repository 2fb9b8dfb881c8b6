import Foundation
import Testing
@testable import QSEngine
@testable import QSInterpreter
@testable import QSLanguage

/// `quantize ... method=awq`, `smooth=`, `act_bits=` and `dtype=f8` on the tiny models: AWQ
/// lowers the output error against RTN on the same grid, smoothing alone leaves the logits as
/// they were, activation quantization changes them by what the grid allows, and bad input is a
/// diagnostic at its option.
@Suite struct SmoothingCommandTests {
    static func logits(_ session: Session) throws -> [Float] {
        let lm = try #require(session.workspace.loaded?.model as? CausalLanguageModel)
        return try lm.forward([3, 9, 14, 1, 27, 5, 40, 2]).data
    }

    static func relativeChange(_ a: [Float], _ b: [Float]) -> Double {
        let noise = zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
        let signal = a.reduce(0.0) { $0 + Double($1) * Double($1) }
        return (noise / signal).squareRoot()
    }

    /// The output errors `report quant` gives the layers of block 0 after `command`.
    static func errors(_ session: Session, _ command: String) throws -> [String: Double] {
        _ = try session.run("reset\n" + command, name: "t.qs")
        let report = try #require(try session.run("report quant layer.0.*", name: "t.qs").record)
        guard case .list(let rows)? = report["layers"] else { return [:] }
        var out: [String: Double] = [:]
        for row in rows {
            let record = try #require(row.record)
            out[try #require(record["layer"]?.text)] = try #require(record["output_error"]?.number)
        }
        return out
    }

    @Test func awqLowersTheBlocksOutputErrorAgainstRTN() throws {
        let (session, folder, _) = try GPTQCommandTests.session()
        defer { try? FileManager.default.removeItem(at: folder) }
        let rtn = try Self.errors(session, "quantize layer.0.* bits=3 group=16")
        let record = try #require(try session.run("reset\nquantize layer.0.* bits=3 group=16 method=awq", name: "t.qs").record)
        #expect(record["method"] == .string("awq"))
        let smoothed = try #require(record["smoothed"]?.number)
        #expect(smoothed >= 1 && smoothed <= 3)
        let awq = try Self.errors(session, "quantize layer.0.* bits=3 group=16 method=awq")
        #expect(rtn.count == 7 && awq.count == 7)
        // Where the search scores a site on its layers' outputs (the MLP), those layers' summed
        // squared output errors can only fall (leaving the site unscaled is a candidate).
        let mlp = ["layer.0.mlp.gate", "layer.0.mlp.up", "layer.0.mlp.down"]
        let before = mlp.map { rtn[$0]! * rtn[$0]! }.reduce(0, +)
        let after = mlp.map { awq[$0]! * awq[$0]! }.reduce(0, +)
        #expect(after <= before * 1.02, "AWQ \(after) against RTN \(before)")
        // The norms took the factors; the quantized layers start from the smoothed values.
        let loaded = try #require(session.workspace.loaded)
        let forms = try QuantizeCommandTests.forms(session)
        #expect(forms["layer.0.attn.q"] == "int3 g16")
        #expect(loaded.weights.changedTensors.contains { $0.contains("norm") || $0.contains("layernorm") })
        // Quantizing again at 8 bits from the smoothed values gives (nearly) the model as loaded.
        let reference = try Self.logits(try GPTQCommandTests.session(nil).0)
        _ = try session.run("quantize layer.0.* bits=8 group=channel", name: "t.qs")
        #expect(Self.relativeChange(reference, try Self.logits(session)) < 0.02)
    }

    @Test(arguments: ["llama", "gpt2", "bert"])
    func smoothingAloneLeavesTheLogitsAsTheyWere(name: String) throws {
        let (folder, text) = try GPTQCommandTests.model(name)
        defer { try? FileManager.default.removeItem(at: folder) }
        let session = Session(output: { _ in })
        _ = try session.run("load \"\(folder.path)\"\ncalibrate \"\(text.path)\" samples=4 seqlen=16", name: "t.qs")
        let loaded = try #require(session.workspace.loaded)
        func outputs() throws -> [Float] {
            if let lm = loaded.model as? CausalLanguageModel { return try lm.forward([3, 9, 14, 1, 27, 5]).data }
            return try BlockRunner(model: loaded.model).runAll([[3, 9, 14, 1, 27, 5]]).flatMap(\.data)
        }
        let before = try outputs()
        // Smoothing before a cast to f16 (whose rounding changes the logits very little):
        // the result is the model as loaded up to that rounding.
        let record = try #require(try session.run("quantize layer.* dtype=f16 smooth=0.5", name: "t.qs").record)
        #expect(try #require(record["smoothed"]?.number) >= 1)
        let smoothedF16 = try outputs()
        _ = try session.run("reset\nquantize layer.* dtype=f16", name: "t.qs")
        let plainF16 = try outputs()
        // f16 rounding of smoothed and unsmoothed weights differs only by rounding.
        #expect(Self.relativeChange(before, smoothedF16) < 5e-3)
        #expect(Self.relativeChange(plainF16, smoothedF16) < 5e-3)
    }

    @Test func activationQuantizationIsSimulatedAndKeptBySnapshots() throws {
        let (session, folder, _) = try GPTQCommandTests.session()
        defer { try? FileManager.default.removeItem(at: folder) }
        let before = try Self.logits(session)
        let record = try #require(try session.run("quantize layer.* act_bits=8", name: "t.qs").record)
        #expect(record["method"] == .string("none"))
        #expect(record["act"] == .string("a8 token"))
        // The weights are as loaded; only the inputs are rounded.
        #expect(try QuantizeCommandTests.forms(session)["layer.0.attn.q"] == "f32")
        let a8 = try Self.logits(session)
        let change8 = Self.relativeChange(before, a8)
        #expect(change8 > 0 && change8 < 0.05)
        _ = try session.run("snapshot s\nquantize layer.* act_bits=3", name: "t.qs")
        let change3 = Self.relativeChange(before, try Self.logits(session))
        #expect(change3 > change8)
        _ = try session.run("restore s", name: "t.qs")
        #expect(try Self.logits(session) == a8)
        // A static scale is the mean over the calibration windows of each window's largest |x|,
        // over 127: measured here for block 0's q, whose input no earlier layer changes.
        _ = try session.run("reset", name: "t.qs")
        let loaded = try #require(session.workspace.loaded)
        let windows = try #require(session.workspace.calibration?.drawn?.set.windows)
        final class Maxima: @unchecked Sendable { var values: [Float] = [] }
        let maxima = Maxima()
        _ = try BlockRunner(model: loaded.model).runAll(windows, observer: { _, name, input in
            if name == "layer.0.attn.q" { maxima.values.append(input.data.map { abs($0) }.max()!) }
        }, stopAfter: 0)
        #expect(maxima.values.count == windows.count)
        let expected = maxima.values.reduce(0, +) / Float(maxima.values.count) / 127
        _ = try session.run("quantize layer.* bits=8 group=channel act_bits=8 act=static", name: "t.qs")
        let q = loaded.model.names.required("layer.0.attn.q").weight
        guard case .static(let scale)? = loaded.weights.activationQuantization(q)?.mode else {
            Issue.record("no static scale on layer.0.attn.q")
            return
        }
        #expect(abs(scale - expected) <= 1e-4 * expected, "\(scale) against \(expected)")
        _ = try session.run("reset", name: "t.qs")
        #expect(try Self.logits(session) == before)
        #expect(session.workspace.loaded?.isModified == false)
    }

    @Test func float8CastHoldsOneBytePerWeightAndAScalePerRow() throws {
        let (session, folder, _) = try GPTQCommandTests.session()
        defer { try? FileManager.default.removeItem(at: folder) }
        let loaded = try #require(session.workspace.loaded)
        let entry = loaded.model.names.required("layer.0.mlp.up")
        let original = try ModelQuantizer.outInValues(try loaded.weights.weight(entry.weight))
        let record = try #require(try session.run("quantize layer.* dtype=f8", name: "t.qs").record)
        #expect(record["scheme"] == .string("f8 e4m3 channel"))
        let weight = try loaded.weights.weight(entry.weight)
        #expect(weight.formName == "f8 e4m3 channel")
        #expect(weight.byteCount == weight.count + weight.outFeatures * 4)
        let values = try weight.floats()
        let columns = weight.inFeatures
        for r in 0 ..< weight.outFeatures {
            let row = original[r * columns ..< (r + 1) * columns]
            let largest = row.map { abs($0) }.max()!
            // e4m3 has 3 mantissa bits: each value within 1/16 of itself (or of the subnormal step).
            for c in 0 ..< columns {
                let w = original[r * columns + c]
                #expect(abs(values[r * columns + c] - w) <= max(abs(w) / 16, largest / 448 * Float(pow(2.0, -10.0))) * 1.0001)
            }
        }
    }

    @Test(arguments: [
        ("quantize layer.* method=awq", "t.qs:1:18:", "calibrate TEXT"),
        ("quantize layer.* smooth=0.5", "t.qs:1:18:", "calibrate TEXT"),
        ("quantize layer.* act_bits=8 act=static", "t.qs:1:29:", "calibrate TEXT"),
        ("quantize layer.* method=awq smooth=0.5", "t.qs:1:29:", "AWQ searches its own"),
        ("quantize layer.* method=awq act_order", "t.qs:1:29:", "option of method=gptq"),
        ("quantize layer.* act=tensor", "t.qs:1:18:", "add act_bits"),
        ("quantize embed act_bits=8", "t.qs:1:16:", "linear layers of the blocks"),
        ("quantize layer.* act_bits=9", "t.qs:1:27:", "out of range"),
        ("quantize layer.* dtype=f8 bits=4", "t.qs:1:27:", "takes no bits"),
        ("quantize layer.* bits=1 method=awq", "t.qs:1:18:", "2 to 8 bits"),
    ])
    func badInputIsADiagnosticAtItsOption(source: String, place: String, phrase: String) throws {
        let needsNoCalibration = phrase == "calibrate TEXT"
        let (session, folder, _) = try GPTQCommandTests.session(needsNoCalibration ? nil : "samples=4 seqlen=16")
        defer { try? FileManager.default.removeItem(at: folder) }
        let error = try #require(CommandContractTests.error(session, source))
        #expect(error.hasPrefix(place), "\(error)")
        #expect(error.contains(phrase), "\(error)")
        #expect(session.workspace.loaded?.isModified == false)
    }

    /// Ctrl-C during AWQ leaves the model as it was, norms included.
    @Test func cancelledAWQChangesNothing() throws {
        let (session, folder, _) = try GPTQCommandTests.session()
        defer { try? FileManager.default.removeItem(at: folder) }
        let before = try Self.logits(session)
        final class Polls: @unchecked Sendable { var count = 0 }
        let polls = Polls()
        session.isCancelled = {
            polls.count += 1
            return polls.count > 12
        }
        let error = try #require(CommandContractTests.error(session, "quantize layer.* bits=4 group=16 method=awq"))
        #expect(error.contains("cancelled"))
        session.isCancelled = { false }
        #expect(session.workspace.loaded?.isModified == false)
        #expect(try Self.logits(session) == before)
    }
}
