import Foundation
import QSTestSupport
import Testing
@testable import QSEngine
@testable import QSInterpreter
@testable import QSLanguage

/// What every command promises: its record's fields are the ones its spec declares, and a
/// command that changes weights completes or leaves them as they were.
@Suite struct CommandContractTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("QSEngineTests/Fixtures/arch")

    final class Results: @unchecked Sendable {
        var records: [(command: String, record: Record)] = []
        var output = ""
    }

    /// A session that keeps every command's record.
    static func session() -> (Session, Results) {
        let results = Results()
        let session = Session(output: { results.output += $0 })
        session.onCommandResult = { name, value in
            if case .record(let record) = value { results.records.append((name, record)) }
        }
        return (session, results)
    }

    /// Every field of every record is declared in the command's spec.
    static func checkDeclared(_ results: Results, in session: Session) {
        #expect(!results.records.isEmpty)
        for (command, record) in results.records {
            let declared = Set((session.table[command]?.resultFields ?? []).map(\.name))
            let undeclared = record.names.filter { !declared.contains($0) }
            #expect(undeclared.isEmpty, "'\(command)' returned undeclared fields \(undeclared)")
        }
    }

    @Test func recordsOfTheModelCommandsHaveOnlyDeclaredFields() throws {
        let (session, results) = Self.session()
        for model in ["llama", "gpt2", "bert"] {
            _ = try session.run("""
                load "\(Self.fixtures.appendingPathComponent(model).path)"
                info
                layers layer.0.*
                snapshot a
                restore a
                reset
                set
                """, name: "t.qs")
        }
        Self.checkDeclared(results, in: session)
        #expect(Set(results.records.map(\.command)) == ["load", "info", "layers", "set"])
    }

    /// The records of eval (every kind, with and without a baseline), generate, bench and fetch
    /// on the real models (QS_SMOLLM2_GGUF, QS_MINILM_DIR, QS_SHAKESPEARE_DIR, QS_BBC_DIR).
    static let realModelsPresent = ["QS_SMOLLM2_GGUF", "QS_MINILM_DIR", "QS_SHAKESPEARE_DIR", "QS_BBC_DIR"]
        .allSatisfy { ProcessInfo.processInfo.environment[$0] != nil }

    @Test(.enabled(if: realModelsPresent))
    func recordsOfTheMeasuringCommandsHaveOnlyDeclaredFields() throws {
        let environment = ProcessInfo.processInfo.environment
        let (session, results) = Self.session()
        let text = "\"\(environment["QS_SHAKESPEARE_DIR"]!)\""
        _ = try session.run("""
            load "\(environment["QS_SMOLLM2_GGUF"]!)"
            eval ppl \(text) tokens=200 ctx=100
            generate "Hello" tokens=2
            bench prompt=8 gen=2
            fetch shakespeare
            """, name: "t.qs")
        let loaded = try #require(session.workspace.loaded)
        let name = try #require(loaded.model.names.entry("layer.2.mlp.up")).weight
        try loaded.weights.replace(name, with: try loaded.weights.floats(name).map { $0 * 0.9 })
        _ = try session.run("""
            eval ppl \(text) tokens=200 ctx=100 stride=50 bos
            eval kld \(text) tokens=200 ctx=100
            load "\(environment["QS_MINILM_DIR"]!)"
            eval embed \(text) sentences=4
            eval classify "\(environment["QS_BBC_DIR"]!)" train=2 test=2
            """, name: "t.qs")
        let minilm = try #require(session.workspace.loaded)
        let dense = try #require(minilm.model.names.entry("layer.0.mlp.up")).weight
        try minilm.weights.replace(dense, with: try minilm.weights.floats(dense).map { $0 * 0.9 })
        _ = try session.run("eval classify \"\(environment["QS_BBC_DIR"]!)\" train=2 test=2", name: "t.qs")
        Self.checkDeclared(results, in: session)
        #expect(results.records.contains { $0.command == "eval" && $0.record["base_accuracy"] != nil })
        #expect(results.records.contains { $0.command == "eval" && $0.record["kld_max"] != nil })
        let ran = Set(results.records.map { $0.command })
        let measuring: Set<String> = ["load", "eval", "generate", "bench", "fetch"]
        #expect(measuring.isSubset(of: ran))
    }

    /// A command that changes weights and is stopped halfway (Ctrl-C), fails, or leaves a NaN
    /// puts every weight back; run to the end, it keeps its changes.
    @Test func interruptedWeightChangesAreRolledBack() throws {
        let (session, _) = Self.session()
        _ = try session.run("load \"\(Self.fixtures.appendingPathComponent("llama").path)\"", name: "t.qs")
        let loaded = try #require(session.workspace.loaded)
        let linears = loaded.model.names.select { $0.kind.isMatrix }
        #expect(linears.count == 15)
        let before = try linears.map { try loaded.weights.floats($0.weight) }
        final class Plan: @unchecked Sendable {
            var changes = 0
            var stopAfter = Int.max
            var failAt: Int?
            var poison: Int?
        }
        let plan = Plan()
        session.isCancelled = { plan.changes >= plan.stopAfter }
        session.register(CommandSpec("halve", summary: "Halve every linear weight.")) { _, session in
            try session.changingWeights { loaded in
                for (index, entry) in linears.enumerated() {
                    if session.isCancelled() { throw EngineError.cancelled }
                    if plan.failAt == index { throw CommandError.failed("disk full") }
                    var values = try loaded.weights.floats(entry.weight).map { $0 / 2 }
                    if plan.poison == index { values[3] = .nan }
                    try loaded.weights.replace(entry.weight, with: values)
                    plan.changes += 1
                }
            }
            return .none
        }
        func unchanged() throws -> Bool {
            try !loaded.isModified && linears.map { try loaded.weights.floats($0.weight) } == before
        }

        plan.stopAfter = 5
        let cancelled = try #require(Self.error(session, "halve"))
        #expect(cancelled.contains("cancelled"))
        #expect(plan.changes == 5)
        #expect(try unchanged())

        plan.stopAfter = .max
        plan.changes = 0
        plan.failAt = 9
        #expect(try #require(Self.error(session, "halve")).contains("disk full"))
        #expect(try unchanged())

        plan.failAt = nil
        plan.poison = 6
        let poisoned = try #require(Self.error(session, "halve"))
        #expect(poisoned.contains("'\(linears[6].weight)'") && poisoned.contains("nan"))
        #expect(try unchanged())

        // A snapshot taken before survives a rolled-back command, and a completed one keeps all.
        _ = try session.run("snapshot clean", name: "t.qs")
        plan.poison = nil
        _ = try session.run("halve", name: "t.qs")
        #expect(loaded.weights.changedTensors.count == linears.count)
        #expect(try loaded.weights.floats(linears[0].weight) == before[0].map { $0 / 2 })
        _ = try session.run("restore clean", name: "t.qs")
        #expect(try unchanged())
    }

    static func error(_ session: Session, _ source: String) -> String? {
        do {
            _ = try session.run(source, name: "t.qs")
            return nil
        } catch {
            return DiagnosticRenderer(color: false).render(error.diagnostics)
        }
    }

    /// The command table is built with the session and changes only when something is added.
    @Test func theTableIsBuiltOnceAndGrowsWithRecipes() throws {
        let (session, _) = Self.session()
        let first = session.table
        _ = try session.run("let x = 1\nprint x", name: "t.qs")
        #expect(session.table == first)
        _ = try session.run("recipe twice(n) { print n }", name: "t.qs")
        #expect(session.table.names == first.names + ["twice"])
        #expect(Set(Session.builtins.map { $0.spec.name }).isSubset(of: Set(first.names)))
    }

    /// `help` looks its argument up; it never runs it.
    @Test func helpNeverRunsItsArgument() throws {
        let (session, results) = Self.session()
        #expect(throws: CommandError.self) { try session.helpText("; fetch smollm2-135m") }
        #expect(throws: CommandError.self) { try session.helpText("help\nload x") }
        #expect(try session.helpText("eval").hasPrefix("usage: eval"))
        #expect(results.records.isEmpty && results.output.isEmpty)
    }
}
