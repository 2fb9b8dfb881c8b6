import Foundation
import QSTestSupport
import Testing
@testable import QSEngine

/// A GEMM case: op(A) is m×k, op(B) is k×n; `pad` is added to every leading dimension.
struct GEMMCase: Sendable, CustomTestStringConvertible {
    var m: Int, n: Int, k: Int
    var transA = false, transB = false
    var alpha: Float = 1, beta: Float = 0
    var pad = 0

    var testDescription: String {
        "\(m)×\(n)×\(k) \(transA ? "T" : "N")\(transB ? "T" : "N") α=\(alpha) β=\(beta) pad=\(pad)"
    }
}

@Suite struct GEMMTests {
    static let cases: [GEMMCase] = [
        GEMMCase(m: 1, n: 1, k: 1),
        GEMMCase(m: 3, n: 5, k: 7),
        GEMMCase(m: 17, n: 33, k: 65),
        GEMMCase(m: 129, n: 1, k: 257),
        GEMMCase(m: 3, n: 5, k: 7, transA: true),
        GEMMCase(m: 17, n: 33, k: 65, transB: true),
        GEMMCase(m: 129, n: 1, k: 257, transA: true, transB: true),
        GEMMCase(m: 17, n: 33, k: 65, transA: true, transB: true, alpha: -0.5, beta: 2),
        GEMMCase(m: 3, n: 5, k: 7, alpha: 1.5, beta: 0.25, pad: 3),
        GEMMCase(m: 17, n: 33, k: 65, transA: true, alpha: 2, beta: -1, pad: 5),
        GEMMCase(m: 129, n: 1, k: 257, transB: true, alpha: 0.75, beta: 1, pad: 2),
        GEMMCase(m: 64, n: 200, k: 96, transB: true, beta: 0.5, pad: 7),
        GEMMCase(m: 1, n: 1, k: 1, transA: true, transB: true, alpha: 3, beta: -2, pad: 1),
        // One row goes through the matrix-vector product, in both layouts of B.
        GEMMCase(m: 1, n: 300, k: 129, transB: true, pad: 3),
        GEMMCase(m: 1, n: 300, k: 129, alpha: 0.5, beta: 0.5, pad: 2),
        GEMMCase(m: 1, n: 37, k: 1000, transB: true, alpha: -1, beta: 1),
        GEMMCase(m: 1, n: 2049, k: 64, pad: 1),
    ]

    /// Runs `test` through the pointer API on padded buffers whose padding is NaN, and checks
    /// every element of C against a double-precision reference within a relative bound, and
    /// that the padding of C is untouched.
    @Test(arguments: cases)
    func matchesDoubleReference(_ test: GEMMCase) {
        var random = TestGenerator(seed: UInt64(test.m * 1_000_003 + test.n * 1009 + test.k))
        let (rowsA, colsA) = test.transA ? (test.k, test.m) : (test.m, test.k)
        let (rowsB, colsB) = test.transB ? (test.n, test.k) : (test.k, test.n)
        let lda = colsA + test.pad, ldb = colsB + test.pad, ldc = test.n + test.pad
        func matrix(_ rows: Int, _ cols: Int, _ ld: Int) -> [Float] {
            var values = [Float](repeating: .nan, count: rows * ld)
            for r in 0..<rows { for c in 0..<cols { values[r * ld + c] = Float.random(in: -1 ..< 1, using: &random) } }
            return values
        }
        let a = matrix(rowsA, colsA, lda)
        let b = matrix(rowsB, colsB, ldb)
        let c0 = matrix(test.m, test.n, ldc)
        var c = c0
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    GEMM.sgemm(
                        transA: test.transA, transB: test.transB, m: test.m, n: test.n, k: test.k,
                        alpha: test.alpha, a: a.baseAddress!, lda: lda, b: b.baseAddress!, ldb: ldb,
                        beta: test.beta, c: c.baseAddress!, ldc: ldc)
                }
            }
        }
        var worst = 0.0
        for i in 0..<test.m {
            for j in 0..<test.n {
                var sum = 0.0, magnitude = 0.0
                for p in 0..<test.k {
                    let x = Double(test.transA ? a[p * lda + i] : a[i * lda + p])
                    let y = Double(test.transB ? b[j * ldb + p] : b[p * ldb + j])
                    sum += x * y
                    magnitude += abs(x * y)
                }
                let old = Double(c0[i * ldc + j])
                let expected = Double(test.alpha) * sum + Double(test.beta) * old
                let bound = abs(Double(test.alpha)) * magnitude + abs(Double(test.beta) * old)
                let error = abs(Double(c[i * ldc + j]) - expected) / max(bound, 1e-30)
                worst = max(worst, error)
            }
            for j in test.n..<ldc { #expect(c[i * ldc + j].isNaN, "padding of C written at \(i),\(j)") }
        }
        #expect(worst < 1e-5, "worst relative error \(worst)")
    }

    @Test func arrayConvenienceMultiplies() {
        // [[1,2,3],[4,5,6]] · [[7,8],[9,10],[11,12]] = [[58,64],[139,154]]
        let a: [Float] = [1, 2, 3, 4, 5, 6]
        let b: [Float] = [7, 8, 9, 10, 11, 12]
        #expect(GEMM.multiply(a, b, m: 2, n: 2, k: 3) == [58, 64, 139, 154])
        let bT: [Float] = [7, 9, 11, 8, 10, 12]
        #expect(GEMM.multiply(a, bT, m: 2, n: 2, k: 3, transB: true) == [58, 64, 139, 154])
        var c: [Float] = [1, 1, 1, 1]
        GEMM.sgemm(m: 2, n: 2, k: 3, alpha: 2, a: a, b: b, beta: -1, c: &c)
        #expect(c == [115, 127, 277, 307])
    }

    @Test func emptyInnerDimensionScalesC() {
        var c: [Float] = [1, 2, 3, 4, 5, 6]
        GEMM.sgemm(m: 2, n: 3, k: 0, alpha: 5, a: [], b: [], beta: 0.5, c: &c)
        #expect(c == [0.5, 1, 1.5, 2, 2.5, 3])
        var dirty: [Float] = [.nan, .infinity, 1]
        GEMM.sgemm(m: 1, n: 3, k: 0, a: [], b: [], beta: 0, c: &dirty)
        #expect(dirty == [0, 0, 0])
    }

    @Test func betaZeroIgnoresOldC() {
        var c: [Float] = [.nan, .nan]
        GEMM.sgemm(m: 1, n: 2, k: 1, a: [2], b: [3, 4], beta: 0, c: &c)
        #expect(c == [6, 8])
    }

    @Test func emptyOuterDimensionIsNoOp() {
        var c: [Float] = []
        GEMM.sgemm(m: 0, n: 4, k: 3, a: [], b: [Float](repeating: 1, count: 12), c: &c)
        #expect(c.isEmpty)
        var sentinel: [Float] = [42]
        sentinel.withUnsafeMutableBufferPointer { c in
            let one: [Float] = [1]
            one.withUnsafeBufferPointer { p in
                GEMM.sgemm(
                    transA: false, transB: false, m: 1, n: 0, k: 1, alpha: 1, a: p.baseAddress!,
                    lda: 1, b: p.baseAddress!, ldb: 1, beta: 0, c: c.baseAddress!, ldc: 1)
            }
        }
        #expect(sentinel == [42])
    }
}

@Suite struct BLASTests {
    static let avx512 = CPUFeatures(
        fma: true, avx: true, avx2: true, avx512f: true, avx512bw: true, avx512dq: true,
        avx512vl: true, osAVX: true, osAVX512: true)

    @Test func avx512PicksSkylakeX() {
        #expect(BLAS.coreType(for: Self.avx512)?.name == "SkylakeX")
    }

    @Test func amxIsNeverPicked() {
        var features = Self.avx512
        features.amxTile = true
        #expect(BLAS.coreType(for: features)?.name == "SkylakeX")
    }

    @Test func avx512WithoutOSStateFallsToHaswell() {
        var features = Self.avx512
        features.osAVX512 = false
        #expect(BLAS.coreType(for: features)?.name == "Haswell")
    }

    @Test(arguments: [\CPUFeatures.avx512bw, \.avx512dq, \.avx512vl, \.avx512f])
    func partialAVX512FallsToHaswell(missing: WritableKeyPath<CPUFeatures, Bool> & Sendable) {
        var features = Self.avx512
        features[keyPath: missing] = false
        #expect(BLAS.coreType(for: features)?.name == "Haswell")
    }

    @Test func avx2AndFMAPickHaswell() {
        let features = CPUFeatures(fma: true, avx: true, avx2: true, osAVX: true)
        #expect(BLAS.coreType(for: features)?.name == "Haswell")
    }

    @Test(arguments: [
        CPUFeatures(),
        CPUFeatures(avx: true, avx2: true, osAVX: true),
        CPUFeatures(fma: true, avx: true, osAVX: true),
        CPUFeatures(fma: true, avx: true, avx2: true),
        CPUFeatures(avx512f: true, avx512bw: true, avx512dq: true, avx512vl: true, osAVX512: true),
    ])
    func withoutAVX2AndFMAOpenBLASDecides(features: CPUFeatures) {
        #expect(BLAS.coreType(for: features) == nil)
    }

    @Test func missingLibraryErrorNamesLibraryAndPackage() {
        let names = ["libqs-no-such-blas.so.0", "libqs-no-such-blas.so"]
        #expect {
            _ = try BLAS.openLibrary(names: names)
        } throws: { error in
            let text = "\(error)"
            return text.contains("libqs-no-such-blas.so.0") && text.contains("libqs-no-such-blas.so:")
                && text.contains("libopenblas-dev")
        }
    }

    @Test func loadsAndReportsTheChosenCore() throws {
        try BLAS.load()
        #expect(!BLAS.coreName.isEmpty)
        #expect(BLAS.threads >= 1)
        if let choice = BLAS.coreType(for: .current), BLAS.chosenBy == choice.reason {
            #expect(BLAS.coreName.lowercased() == choice.name.lowercased())
        } else {
            #expect(["OPENBLAS_CORETYPE was set", "OpenBLAS's own detection"].contains(BLAS.chosenBy))
        }
    }
}
