import Foundation
import Testing
@testable import QSFuzzing

/// The fuzz targets' committed inputs, replayed through the same harness libFuzzer drives
/// (scripts/fuzz): the seed corpora (Tests/Fuzz/corpus) must reach a forward pass, and every
/// input that ever crashed, hung or leaked (Tests/Fuzz/regressions) must now run through.
@Suite struct FuzzRegressionTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    static func inputs(_ kind: String, _ target: FuzzTarget) -> [URL] {
        let folder = root.appendingPathComponent(kind).appendingPathComponent(target.rawValue)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { folder.appendingPathComponent($0) }
    }

    @Test(arguments: FuzzTarget.allCases)
    func seedsReachAForwardPass(target: FuzzTarget) throws {
        let harness = try FuzzHarness()
        let seeds = Self.inputs("corpus", target)
        #expect(!seeds.isEmpty)
        let stages = try seeds.map { harness.run(target, [UInt8](try Data(contentsOf: $0))) }
        #expect(stages.contains(.computed), "\(target): \(stages)")
    }

    @Test(arguments: FuzzTarget.allCases)
    func everyFindingNowRunsThrough(target: FuzzTarget) throws {
        let harness = try FuzzHarness()
        for input in Self.inputs("regressions", target) {
            _ = harness.run(target, [UInt8](try Data(contentsOf: input)))
        }
    }
}
