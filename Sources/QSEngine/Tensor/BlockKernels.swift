import CQSKernels

/// Matrix-vector products on a GGUF tensor's stored blocks (Q8_0, Q4_0, Q4_1, or f32), for decoding:
/// the weight is read as the file holds it, never converted to an fp32 copy, the rows split
/// over the worker threads. The vector path (AVX-512, AVX2 with FMA, or portable C) is chosen
/// at run time; `path` forces one (tests run every path on this CPU).
package enum BlockKernels {
    /// A vector path of the kernels.
    package enum Path: Int, Sendable, CaseIterable, CustomStringConvertible {
        case portable = 0, avx2 = 1, avx512 = 2

        package var description: String {
            switch self {
            case .portable: "portable"
            case .avx2: "avx2"
            case .avx512: "avx512"
            }
        }
    }

    /// The widest path this CPU runs.
    package static let best = Path(rawValue: Int(qs_kernels_best_isa())) ?? .portable

    /// The path in use: the best unless a task forces one (the tests run every path). Task-local,
    /// so a test forcing a path does not change the path of the tests running beside it, as a
    /// global did. Never wider than the CPU runs.
    @TaskLocal package static var path: Path = best

    /// What the block kernels multiply the weights with.
    package enum Activations: String, Sendable, CaseIterable {
        /// The fp32 activations: the dequantize-then-fp32 product (up to the order of additions).
        case exact
        /// Activations quantized to int8 per 32-value block, integer dot products (llama.cpp's way).
        case int8
    }

    /// The activations in use: exact unless asked (the interpreter binds `set kernels=` for
    /// each command it runs).
    @TaskLocal package static var activations: Activations = .exact

    /// The kernel path as records name it: the vector path, with "+int8" for integer products
    /// (and "vnni" where AVX-512 VNNI runs them).
    package static var pathName: String {
        switch activations {
        case .exact: path.description
        case .int8: path == .avx512 && qs_kernels_has_vnni() != 0 ? "avx512-vnni+int8" : "\(path == .avx512 ? Path.avx2 : path)+int8"
        }
    }

    /// ggml's type id for the block types the kernels take.
    static func ggmlType(_ dtype: DType) -> Int32? {
        switch dtype {
        case .q8_0: 8
        case .q4_0: 2
        case .q4_1: 3
        case .f32: 0
        default: nil
        }
    }

    /// Whether `weight` is multiplied on its stored blocks: a stored Q8_0/Q4_0/Q4_1 matrix
    /// [out, in], with no mask or smoothing to apply on the way.
    package static func takes(_ weight: Weight) -> Bool {
        guard case .stored(let tensor) = weight.form, let type = ggmlType(tensor.dtype), weight.layout == .outIn,
            weight.mask == nil, weight.scaling == nil, weight.shape.count == 2, type == 0 || weight.shape[1] % 32 == 0
        else { return false }
        return type == 0 || qs_matvec_blocks_supported(type) != 0
    }

    /// y[r] = Σ_c x[c] · W[r][c] for every output row r of `weight` (which `takes` accepts),
    /// x one row of `weight.inFeatures` values, y `weight.outFeatures` values. A GGUF llama
    /// q/k projection's rows are stored permuted for rotary embedding: y is in Hugging Face order.
    package static func multiply(_ weight: Weight, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) throws {
        guard case .stored(let tensor) = weight.form, let type = ggmlType(tensor.dtype) else {
            throw EngineError("BlockKernels.multiply: the weight is not a stored block matrix")
        }
        let rows = weight.shape[0], columns = weight.shape[1]
        let rowBytes = type == 0 ? columns * 4 : columns / 32 * tensor.dtype.bytesPerBlock
        let isa = Int32(path.rawValue)
        try tensor.withBytes { raw in
            guard raw.count >= rows * rowBytes, let base = raw.baseAddress, type != 0 || Int(bitPattern: base) % 4 == 0 else {
                throw EngineError(path: tensor.file.path, subject: tensor.name, "stored bytes (\(raw.count)) do not hold \(rows) rows of \(rowBytes)")
            }
            let pointers = SendablePointers(weights: base, x: x, y: y)
            let heads = tensor.rotaryPermutationHeads
            var stored: [Float] = heads == nil ? [] : [Float](repeating: 0, count: rows)
            stored.withUnsafeMutableBufferPointer { permuted in
                let target = heads == nil ? pointers.y : permuted.baseAddress!
                let threads = Int32(ThreadCount.configured)
                if type == 0 {
                    let floats = pointers.weights.assumingMemoryBound(to: Float.self)
                    qs_matvec_f32(floats, columns, pointers.x, columns, target, rows, isa, threads)
                } else if activations == .int8 {
                    _ = qs_matvec_blocks_int8(type, pointers.weights, rowBytes, pointers.x, columns, target, rows, isa, threads)
                } else {
                    _ = qs_matvec_blocks_mt(type, pointers.weights, rowBytes, pointers.x, columns, target, rows, isa, threads)
                }
            }
            if let heads {
                // Hugging Face row r is stored row `head · headRows + 2 · (within mod half) + within / half`.
                let headRows = rows / heads, half = headRows / 2
                for r in 0 ..< rows {
                    let head = r / headRows, within = r % headRows
                    y[r] = stored[head * headRows + 2 * (within % half) + within / half]
                }
            }
        }
    }

    private struct SendablePointers: @unchecked Sendable {
        let weights: UnsafeRawPointer
        let x: UnsafePointer<Float>
        let y: UnsafeMutablePointer<Float>
    }


    /// Whether a packed weight is multiplied as packed: 4- or 8-bit integer codes in their
    /// natural column order, a scale per channel or per group of a multiple of 32 columns, rows
    /// a multiple of 32 wide, no mask or smoothing to apply on the way.
    package static func takesPacked(_ weight: Weight) -> Bool {
        guard case .packed(let packed) = weight.form else { return false }
        return packedMatrix(packed, weight: weight) { _ in true } ?? false
    }

    /// The C view of a packed weight, for `body`; nil where the kernels do not take it.
    private static func packedMatrix<R>(_ p: PackedWeight, weight: Weight, _ body: (inout qs_packed_matrix) throws -> R) rethrows -> R? {
        guard weight.layout == .outIn, weight.mask == nil, weight.scaling == nil, p.bits == 4 || p.bits == 8, p.columns % 32 == 0 else { return nil }
        if case .group(let size) = p.granularity, size % 32 != 0 { return nil }
        return try p.withMatrix(body)
    }

    /// y = W x for a packed weight that `takesPacked` accepts (x `inFeatures`, y `outFeatures` values).
    package static func multiply(packed weight: Weight, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) throws {
        guard case .packed(let packed) = weight.form,
            let status = packedMatrix(packed, weight: weight, { m in
                qs_matvec_packed(&m, x, y, Int32(path.rawValue), activations == .int8 ? 1 : 0, Int32(ThreadCount.configured))
            }), status == 0
        else { throw EngineError("BlockKernels.multiply: the packed weight is not one the kernels take") }
    }

    /// y[r] = Σ_c x[c] · W[r][c] for an fp32 matrix of `rows` rows of `columns` values.
    package static func multiply(
        floats w: UnsafePointer<Float>, rows: Int, columns: Int, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>
    ) {
        qs_matvec_f32(w, columns, x, columns, y, rows, Int32(path.rawValue), Int32(ThreadCount.configured))
    }
}
