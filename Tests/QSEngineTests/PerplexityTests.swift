import Foundation
import Testing
@testable import QSEngine

@Suite struct PerplexityTests {
    @Test func nonOverlappingWindowsScoreAllButEachFirstToken() {
        let windows = Array(EvaluationWindows(tokens: 10, context: 4, stride: 4))
        #expect(windows.map(\.range) == [0 ..< 4, 4 ..< 8, 8 ..< 10])
        #expect(windows.map(\.scored) == [1 ..< 4, 5 ..< 8, 9 ..< 10])
    }

    @Test func slidingWindowsScoreEachTokenOnce() {
        let windows = Array(EvaluationWindows(tokens: 10, context: 6, stride: 3))
        #expect(windows.map(\.range) == [0 ..< 6, 3 ..< 9, 6 ..< 10])
        #expect(windows.map(\.scored) == [1 ..< 6, 6 ..< 9, 9 ..< 10])
        #expect(windows.reduce(0) { $0 + $1.scored.count } == 9)
    }

    @Test func negativeLogLikelihoodIsLogSoftmax() {
        let logits = Activations(rows: 1, cols: 3, data: [1, 2, 3])
        let expected = -(3 - log(exp(1.0) + exp(2.0) + exp(3.0)))
        #expect(abs(Perplexity.negativeLogLikelihood(logits, row: 0, target: 2) - expected) < 1e-12)
    }
}
