import Synchronization
import Testing
@testable import QSEngine

@Suite struct ParallelTests {
    /// Each index is visited exactly once, the ranges are contiguous and disjoint, and there
    /// are at most `chunks` of them.
    @Test(arguments: [(0, 4), (1, 4), (7, 1), (7, 3), (10, 16), (1000, 2), (1001, 7)])
    func coversEachIndexOnce(count: Int, chunks: Int) {
        let visits = Mutex([Int](repeating: 0, count: count))
        let ranges = Mutex<[Range<Int>]>([])
        parallelFor(count, chunks: chunks) { range in
            visits.withLock { for index in range { $0[index] += 1 } }
            ranges.withLock { $0.append(range) }
        }
        #expect(visits.withLock { $0 }.allSatisfy { $0 == 1 })
        let sorted = ranges.withLock { $0 }.sorted { $0.lowerBound < $1.lowerBound }
        #expect(sorted.count == min(chunks, count))
        #expect(sorted.allSatisfy { !$0.isEmpty })
        #expect(zip(sorted, sorted.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
        let sizes = sorted.map(\.count)
        #expect((sizes.max() ?? 0) - (sizes.min() ?? 0) <= 1)
    }

    @Test func writesThroughAPointerPerRange() {
        var output = [Int](repeating: 0, count: 500)
        output.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            parallelFor(500, chunks: 4) { range in
                for index in range { base[index] = index * index }
            }
        }
        #expect(output == (0..<500).map { $0 * $0 })
    }

    @Test(arguments: [("3", 3), ("1", 1), (" 12 ", 12)])
    func threadCountFromVariable(value: String, expected: Int) throws {
        #expect(try ThreadCount.parse(value, cores: 8) == expected)
    }

    @Test func threadCountDefaultsToCores() throws {
        #expect(try ThreadCount.parse(nil, cores: 6) == 6)
        #expect(try ThreadCount.parse("", cores: 6) == 6)
    }

    @Test(arguments: ["0", "-2", "two", "1.5"])
    func invalidThreadCountIsAnError(value: String) {
        #expect(throws: EngineError.self) { try ThreadCount.parse(value, cores: 4) }
    }
}
