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
    @Test func expMatchesFoundationWithinTwoULPs() {
        var worst: Float = 0
        var x: Float = -87
        while x < 88.5 {
            var lanes = SIMD16<Float>()
            for i in 0 ..< 16 { lanes[i] = x + Float(i) * 0.0037 }
            let fast = FastMath.exp(lanes)
            for i in 0 ..< 16 {
                let exact = Float(Foundation.exp(Double(lanes[i])))
                worst = max(worst, abs(fast[i] - exact) / exact)
            }
            x += 0.05
        }
        #expect(worst < 3e-7)
    }

    @Test func expSaturates() {
        let e = FastMath.exp(SIMD16<Float>(repeating: -200))
        #expect(e.max() == 0)
        #expect(FastMath.exp(SIMD16<Float>(repeating: 100)).min() == .infinity)
        #expect(FastMath.exp(SIMD16<Float>(repeating: 0))[0] == 1)
    }

    @Test func shiftedSumsHandleTails() {
        var values: [Float] = (0 ..< 37).map { Float($0) * 0.1 - 2 }
        let expected = values.reduce(0.0) { $0 + Foundation.exp(Double($1 - 1.5)) }
        let sum = values.withUnsafeMutableBufferPointer { FastMath.expShifted($0.baseAddress!, count: 37, shift: 1.5) }
        #expect(abs(sum - expected) / expected < 1e-6)
        #expect(abs(Double(values[36]) - Foundation.exp(Double(36) * 0.1 - 2 - 1.5)) < 1e-6)
    }
}
