import CQSKernels

/// Matrix-vector products on a GGUF tensor's stored blocks (Q8_0, Q4_0, Q4_1), for decoding:
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

    /// The path in use (the best unless forced; never wider than the CPU runs).
    nonisolated(unsafe) package static var path: Path = best

    /// ggml's type id for the block types the kernels take.
    static func ggmlType(_ dtype: DType) -> Int32? {
        switch dtype {
        case .q8_0: 8
        case .q4_0: 2
        case .q4_1: 3
        default: nil
        }
    }

    /// Whether `weight` is multiplied on its stored blocks: a stored Q8_0/Q4_0/Q4_1 matrix
    /// [out, in], with no mask or smoothing to apply on the way.
    package static func takes(_ weight: Weight) -> Bool {
        guard case .stored(let tensor) = weight.form, let type = ggmlType(tensor.dtype), weight.layout == .outIn,
            weight.mask == nil, weight.scaling == nil, weight.shape.count == 2, weight.shape[1] % 32 == 0
        else { return false }
        return qs_matvec_blocks_supported(type) != 0
    }

    /// y[r] = Σ_c x[c] · W[r][c] for every output row r of `weight` (which `takes` accepts),
    /// x one row of `weight.inFeatures` values, y `weight.outFeatures` values. A GGUF llama
    /// q/k projection's rows are stored permuted for rotary embedding: y is in Hugging Face order.
    package static func multiply(_ weight: Weight, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) throws {
        guard case .stored(let tensor) = weight.form, let type = ggmlType(tensor.dtype) else {
            throw EngineError("BlockKernels.multiply: the weight is not a stored block matrix")
        }
        let rows = weight.shape[0], columns = weight.shape[1]
        let rowBytes = columns / 32 * tensor.dtype.bytesPerBlock
        let isa = Int32(path.rawValue)
        try tensor.withBytes { raw in
            guard raw.count >= rows * rowBytes, let base = raw.baseAddress else {
                throw EngineError(path: tensor.file.path, subject: tensor.name, "stored bytes (\(raw.count)) do not hold \(rows) rows of \(rowBytes)")
            }
            let pointers = SendablePointers(weights: base, x: x, y: y)
            let heads = tensor.rotaryPermutationHeads
            var stored: [Float] = heads == nil ? [] : [Float](repeating: 0, count: rows)
            stored.withUnsafeMutableBufferPointer { permuted in
                let target = heads == nil ? pointers.y : permuted.baseAddress!
                let out = SendableOutput(target)
                parallelFor(rows, chunks: min(ThreadCount.configured, max(1, rows / 64))) { range in
                    _ = qs_matvec_blocks(
                        type, pointers.weights, rowBytes, pointers.x, columns, out.pointer + range.lowerBound,
                        range.lowerBound, range.upperBound, isa)
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

    private struct SendableOutput: @unchecked Sendable {
        let pointer: UnsafeMutablePointer<Float>
        init(_ pointer: UnsafeMutablePointer<Float>) { self.pointer = pointer }
    }
}
