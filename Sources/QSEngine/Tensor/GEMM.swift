import CBLAS

/// The one matrix product of qs: C = alpha * op(A) * op(B) + beta * C in fp32, row-major,
/// backed by OpenBLAS's `cblas_sgemm`. op(A) is m×k, op(B) is k×n, C is m×n.
///
/// The first product opens OpenBLAS (see `BLAS`); a missing library is fatal here, so a
/// program calls `BLAS.load()` at start-up to report it as an error instead.
package enum GEMM {
    /// C = alpha * op(A) * op(B) + beta * C, all row-major.
    ///
    /// A is stored m×k (or k×m when `transA`), B is stored k×n (or n×k when `transB`); `lda`,
    /// `ldb` and `ldc` are the distances between rows, at least the stored width. A weight
    /// stored [out, in] as in checkpoints is used as `transB: true` with `ldb` = in.
    /// With k == 0 C becomes beta * C; with m == 0 or n == 0 nothing is touched. When beta is
    /// 0, C is only written (NaNs in it do not propagate). Bad dimensions are programmer
    /// errors and stop the program.
    package static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        checkShape(transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc)
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            scale(c, rows: m, columns: n, ldc: ldc, by: beta)
            return
        }
        // One row (decoding a token): a matrix-vector product reads B once where sgemm would
        // first copy all of it into its packed layout.
        if m == 1 && !transA {
            // beta 0 writes C without reading it, as sgemm does.
            if beta == 0 { c.update(repeating: 0, count: n) }
            BLAS.threadPoolLock.reading {
                // C[1, n] = a · op(B): op(B) = B (k×n) is Bᵀ·a; op(B) = Bᵀ (B stored n×k) is B·a.
                BLAS.library.sgemv(
                    Int32(QS_CBLAS_ROW_MAJOR), Int32(transB ? QS_CBLAS_NO_TRANS : QS_CBLAS_TRANS),
                    Int32(transB ? n : k), Int32(transB ? k : n), alpha, b, Int32(ldb), a, 1, beta, c, 1)
            }
            return
        }
        // Products may run side by side; a change of thread count waits for them (OpenBLAS
        // resizes its thread pool in openblas_set_num_threads).
        BLAS.threadPoolLock.reading {
            BLAS.library.sgemm(
                Int32(QS_CBLAS_ROW_MAJOR),
                Int32(transA ? QS_CBLAS_TRANS : QS_CBLAS_NO_TRANS),
                Int32(transB ? QS_CBLAS_TRANS : QS_CBLAS_NO_TRANS),
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
    }

    /// C += AᵀA for A stored k×n (row-major, rows contiguous), updating only the upper
    /// triangle of the n×n C (row-major: entries with column ≥ row); the rest is untouched.
    package static func accumulateGram(_ a: UnsafePointer<Float>, rows k: Int, columns n: Int, into c: UnsafeMutablePointer<Float>) {
        guard k > 0, n > 0 else { return }
        BLAS.threadPoolLock.reading {
            BLAS.library.ssyrk(
                Int32(QS_CBLAS_ROW_MAJOR), Int32(QS_CBLAS_UPPER), Int32(QS_CBLAS_TRANS), Int32(n), Int32(k), 1, a, Int32(n), 1, c,
                Int32(n))
        }
    }

    /// `sgemm` over packed arrays: `a` holds m·k values, `b` k·n, `c` m·n, rows contiguous.
    package static func sgemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: [Float], b: [Float], beta: Float = 0, c: inout [Float]
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "GEMM.sgemm: negative dimension \(m)×\(n)×\(k)")
        precondition(a.count == m * k, "GEMM.sgemm: A has \(a.count) values, expected \(m)×\(k)")
        precondition(b.count == k * n, "GEMM.sgemm: B has \(b.count) values, expected \(k)×\(n)")
        precondition(c.count == m * n, "GEMM.sgemm: C has \(c.count) values, expected \(m)×\(n)")
        guard m > 0, n > 0 else { return }
        let lda = max(1, transA ? m : k)
        let ldb = max(1, transB ? k : n)
        c.withUnsafeMutableBufferPointer { c in
            guard k > 0 else {
                scale(c.baseAddress!, rows: m, columns: n, ldc: n, by: beta)
                return
            }
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    sgemm(
                        transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                        a: a.baseAddress!, lda: lda, b: b.baseAddress!, ldb: ldb,
                        beta: beta, c: c.baseAddress!, ldc: n)
                }
            }
        }
    }

    /// op(A) · op(B) as a new m×n array.
    package static func multiply(
        _ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false
    ) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        sgemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, b: b, c: &c)
        return c
    }

    private static func checkShape(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int
    ) {
        let limit = Int(Int32.max)
        precondition(
            (0...limit).contains(m) && (0...limit).contains(n) && (0...limit).contains(k),
            "GEMM.sgemm: dimensions \(m)×\(n)×\(k) out of range")
        let widthA = transA ? m : k
        let widthB = transB ? k : n
        precondition(
            lda >= max(1, widthA) && lda <= limit,
            "GEMM.sgemm: lda \(lda) is less than the row width \(widthA) of A")
        precondition(
            ldb >= max(1, widthB) && ldb <= limit,
            "GEMM.sgemm: ldb \(ldb) is less than the row width \(widthB) of B")
        precondition(
            ldc >= max(1, n) && ldc <= limit,
            "GEMM.sgemm: ldc \(ldc) is less than the row width \(n) of C")
    }

    /// C = beta * C over the m×n block; beta == 0 writes zeros.
    private static func scale(
        _ c: UnsafeMutablePointer<Float>, rows: Int, columns: Int, ldc: Int, by beta: Float
    ) {
        guard beta != 1 else { return }
        for row in 0..<rows {
            let line = c + row * ldc
            if beta == 0 {
                line.update(repeating: 0, count: columns)
            } else {
                for column in 0..<columns { line[column] *= beta }
            }
        }
    }
}
