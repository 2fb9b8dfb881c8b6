import Foundation
import Testing
@testable import QSEngine
@testable import QSInterpreter
@testable import QSLanguage

/// `quantize` on the tiny models: the design card's form as written, what a pattern selects,
/// mixed precision, true sizes, snapshots, and each bad input as a diagnostic at its option.
@Suite struct QuantizeCommandTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("QSEngineTests/Fixtures/arch")

    static func session(_ model: String = "llama") throws -> Session {
        let session = Session(output: { _ in })
        _ = try session.run("load \"\(fixtures.appendingPathComponent(model).path)\"", name: "t.qs")
        return session
    }

    static func forms(_ session: Session) throws -> [String: String] {
        let loaded = try #require(session.workspace.loaded)
        var forms: [String: String] = [:]
        for entry in loaded.model.names.entries { forms[entry.canonical] = try loaded.weights.weight(entry.weight).formName }
        return forms
    }

    @Test func theDesignCardFormWorksAsWritten() throws {
        let session = try Self.session()
        let before = try #require(try session.run("info", name: "t.qs").record)
        let record = try #require(try session.run("quantize layer.* bits=4 asym", name: "t.qs").record)
        #expect(record["layers"] == .number(14))
        #expect(record["scheme"] == .string("int4 g128 asym"))
        let forms = try Self.forms(session)
        #expect(forms["layer.0.attn.q"] == "int4 g128 asym" && forms["layer.1.mlp.down"] == "int4 g128 asym")
        #expect(forms["layer.0.attn_norm"] == "f32" && forms["embed"] == "f32" && forms["head"] == "f32")
        // True bytes: codes, fp16 scales and packed zero points, not fp32 copies.
        let loaded = try #require(session.workspace.loaded)
        let up = try loaded.weights.weight(try #require(loaded.model.names.entry("layer.0.mlp.up")).weight)
        #expect(up.byteCount == 64 * 16 + 64 * 2 + 32)
        let bytesBefore = try #require(before["bytes"]?.number)
        #expect(try #require(record["bytes"]?.number) < bytesBefore)
        #expect(try #require(session.run("info", name: "t.qs").record?["bytes"]) == record["bytes"])
    }

    @Test func patternsSelectLinearLayersAndNamedTables() throws {
        let session = try Self.session()
        #expect(try session.run("quantize * bits=8", name: "t.qs").record?["layers"] == .number(14))
        #expect(try session.run("quantize head bits=8", name: "t.qs").record?["layers"] == .number(1))
        #expect(try session.run("quantize embed bits=8 group=channel", name: "t.qs").record?["layers"] == .number(1))
        #expect(try session.run("quantize layer.* bits=4 exclude=layer.*.mlp.*", name: "t.qs").record?["layers"] == .number(8))
        let forms = try Self.forms(session)
        #expect(forms["embed"] == "int8 channel" && forms["head"] == "int8 g128")
        #expect(forms["layer.1.attn.o"] == "int4 g128" && forms["layer.1.mlp.gate"] == "int8 g128")
        // A tied head is the embedding: the message says so.
        let tied = try Self.session("smollm2")
        #expect(CommandContractTests.error(tied, "quantize head bits=8")?.contains("ties its head to the token embedding") == true)
    }

    /// Mixed precision by pattern: later commands on some layers leave the others as they were.
    @Test func laterCommandsOverrideTheLayersTheyName() throws {
        let session = try Self.session()
        _ = try session.run("quantize layer.* bits=4 group=16\nquantize layer.*.attn.* bits=8 group=channel", name: "t.qs")
        let forms = try Self.forms(session)
        #expect(forms["layer.0.attn.k"] == "int8 channel" && forms["layer.0.mlp.up"] == "int4 g16")
        _ = try session.run("snapshot mixed\nreset", name: "t.qs")
        #expect(try Self.forms(session)["layer.0.attn.k"] == "f32")
        _ = try session.run("restore mixed", name: "t.qs")
        #expect(try Self.forms(session)["layer.0.mlp.up"] == "int4 g16")
        _ = try session.run("quantize layer.* dtype=f16", name: "t.qs")
        #expect(try Self.forms(session)["layer.1.mlp.down"] == "f16")
    }

    /// Each bad input is a diagnostic at the option that is wrong, and nothing changes.
    @Test(arguments: [
        ("quantize layer.* bits=9", "t.qs:1:23:", "between 1 and 8"),
        ("quantize layer.* bits=0", "t.qs:1:23:", "between 1 and 8"),
        ("quantize layer.* group=0", "t.qs:1:18:", "positive whole number"),
        ("quantize layer.* group=wide", "t.qs:1:18:", "channel or tensor"),
        ("quantize layer.* group=64", "t.qs:1:18:", "wider than the rows of 32"),
        ("quantize layer.* bits=1 asym", "t.qs:1:18:", "no zero point"),
        ("quantize layer.* dtype=f16 bits=8", "t.qs:1:28:", "takes no bits"),
        ("quantize layer.*.atn.* bits=4", "t.qs:1:10:", "matches no layer"),
        ("quantize layer.*.attn_norm", "t.qs:1:10:", "matches no linear layer"),
        ("quantize layer.* exclude=layer.*.mpl.*", "t.qs:1:18:", "close names"),
        ("quantize layer.* exclude=layer.*", "t.qs:1:18:", "leaves no layer"),
        ("quantize layer.* method=hqq", "t.qs:1:25:", "allowed values"),
        ("quantize layer.* clip=max", "t.qs:1:23:", "allowed values"),
    ])
    func badInputIsADiagnosticAtItsOption(source: String, place: String, phrase: String) throws {
        let session = try Self.session()
        let error = try #require(CommandContractTests.error(session, source))
        #expect(error.hasPrefix(place), "\(error)")
        #expect(error.contains(phrase), "\(error)")
        #expect(session.workspace.loaded?.isModified == false)
    }

    /// Ctrl-C during a quantization leaves every layer as it was.
    @Test func cancelledQuantizationChangesNothing() throws {
        let session = try Self.session()
        final class Polls: @unchecked Sendable { var count = 0 }
        let polls = Polls()
        session.isCancelled = {
            polls.count += 1
            return polls.count > 5
        }
        let error = try #require(CommandContractTests.error(session, "quantize layer.* bits=4"))
        #expect(error.contains("cancelled"))
        #expect(session.workspace.loaded?.isModified == false)
    }
}
