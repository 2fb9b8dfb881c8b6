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
        #expect(abs(Perplexity.negativeLogLikelihood(logits, row: 0, target: 2) - expected) < 1e-6)
    }
}

@Suite struct FastMathTests {
    @Test func expMatchesFoundation() {
        var worst: Float = 0
        var x: Float = -87
        while x < 88.3 {
            let exact = Float(Foundation.exp(Double(x)))
            worst = max(worst, abs(FastMath.exp(x) - exact) / exact)
            x += 0.0137
        }
        #expect(worst < 3e-7)
    }

    @Test func expSaturates() {
        #expect(FastMath.exp(-200) == 0)
        #expect(FastMath.exp(100) == .infinity)
        #expect(FastMath.exp(0) == 1)
    }

    @Test(arguments: [1, 15, 16, 17, 37, 49152])
    func shiftedSumsAndMaximumHandleTails(count: Int) {
        var values: [Float] = (0 ..< count).map { Float($0 % 97) * 0.1 - 2 }
        let expected = values.reduce(0.0) { $0 + Foundation.exp(Double($1 - 1.5)) }
        let maximum = values.withUnsafeBufferPointer { FastMath.maximum($0.baseAddress!, count: count) }
        #expect(maximum == values.max())
        let readOnly = values.withUnsafeBufferPointer { FastMath.sumExpShifted($0.baseAddress!, count: count, shift: 1.5) }
        #expect(abs(readOnly - expected) / expected < 1e-6)
        let last = values[count - 1]
        let sum = values.withUnsafeMutableBufferPointer { FastMath.expShifted($0.baseAddress!, count: count, shift: 1.5) }
        #expect(abs(sum - expected) / expected < 1e-6)
        #expect(abs(Double(values[count - 1]) - Foundation.exp(Double(last) - 1.5)) < 1e-6)
    }
}
