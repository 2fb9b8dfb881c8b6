/// The Cholesky factorisations GPTQ and SparseGPT need, through the LAPACK that OpenBLAS ships
/// (dpotrf, dpotri), in double precision: the Hessians of wide layers are ill-conditioned
/// enough that fp32 fails where double does not.
package enum Cholesky {
    /// For a symmetric positive-definite n×n matrix H (row-major), the upper triangular U with
    /// H⁻¹ = Uᵀ U, as GPTQ uses it (torch: cholesky(cholesky_inverse(cholesky(H)), upper=True)).
    /// Returns nil when H is not positive definite.
    package static func upperFactorOfInverse(_ h: [Double], n: Int) -> [Double]? {
        precondition(h.count == n * n, "Cholesky: \(h.count) values for \(n)×\(n)")
        guard n > 0 else { return [] }
        // LAPACK is column-major: the row-major H is its transpose, the same symmetric matrix.
        var a = h
        var size = Int32(n)
        var info: Int32 = 0
        let library = BLAS.library
        // Lower factor L with H = L Lᵀ (stored column-major: "L").
        a.withUnsafeMutableBufferPointer { library.dpotrf("L", &size, $0.baseAddress!, &size, &info) }
        guard info == 0 else { return nil }
        // H⁻¹ from L (its lower triangle).
        a.withUnsafeMutableBufferPointer { library.dpotri("L", &size, $0.baseAddress!, &size, &info) }
        guard info == 0 else { return nil }
        // Fill the upper triangle (column-major) from the lower, then factor H⁻¹ = Uᵀ U, U upper.
        for column in 0 ..< n {
            for row in 0 ..< column { a[column * n + row] = a[row * n + column] }
        }
        a.withUnsafeMutableBufferPointer { library.dpotrf("U", &size, $0.baseAddress!, &size, &info) }
        guard info == 0 else { return nil }
        // Column-major upper U is row-major Uᵀ (lower): transpose back, zeroing below the diagonal.
        var u = [Double](repeating: 0, count: n * n)
        for row in 0 ..< n {
            for column in row ..< n { u[row * n + column] = a[column * n + row] }
        }
        return u
    }
}
