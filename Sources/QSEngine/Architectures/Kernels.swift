import CQSKernels
import Foundation

/// Row-major fp32 activations: `rows` tokens of `cols` features.
package struct Activations: Sendable {
    package var rows: Int
    package var cols: Int
    package var data: [Float]

    package init(rows: Int, cols: Int, data: [Float]) {
        precondition(data.count == rows * cols, "activation size does not match its shape")
        self.rows = rows
        self.cols = cols
        self.data = data
    }

    package init(rows: Int, cols: Int) {
        self.init(rows: rows, cols: cols, data: [Float](repeating: 0, count: rows * cols))
    }
}

/// Called with the input of every linear layer before it is applied (for calibration
/// statistics): the canonical layer name and the input activations.
package typealias LinearObserver = (_ canonicalName: String, _ input: Activations) -> Void

/// The numeric building blocks of the transformer forward passes.
package enum Kernels {
    /// RMSNorm as the llama family computes it: x / sqrt(mean(x²) + eps) · w.
    package static func rmsNorm(_ x: Activations, weight: [Float], eps: Float) -> Activations {
        var y = Activations(rows: x.rows, cols: x.cols)
        let n = x.cols
        x.data.withUnsafeBufferPointer { src in
            y.data.withUnsafeMutableBufferPointer { dst in
                for r in 0 ..< x.rows {
                    let row = r * n
                    var sum: Float = 0
                    for i in 0 ..< n { sum += src[row + i] * src[row + i] }
                    let scale = 1 / (sum / Float(n) + eps).squareRoot()
                    for i in 0 ..< n { dst[row + i] = src[row + i] * scale * weight[i] }
                }
            }
        }
        return y
    }

    /// The mean of `count` values and 1 / sqrt(variance + eps): LayerNorm's statistics of a row.
    @inline(__always)
    package static func meanAndInverseDeviation(_ row: UnsafePointer<Float>, count n: Int, eps: Float) -> (mean: Float, inverse: Float) {
        var mean: Float = 0
        for i in 0 ..< n { mean += row[i] }
        mean /= Float(n)
        var variance: Float = 0
        for i in 0 ..< n {
            let d = row[i] - mean
            variance += d * d
        }
        variance /= Float(n)
        return (mean, 1 / (variance + eps).squareRoot())
    }

    /// LayerNorm: (x - mean) / sqrt(var + eps) · w + b, over each row.
    package static func layerNorm(_ x: Activations, weight: [Float], bias: [Float], eps: Float) -> Activations {
        var y = Activations(rows: x.rows, cols: x.cols)
        let n = x.cols
        x.data.withUnsafeBufferPointer { src in
            y.data.withUnsafeMutableBufferPointer { dst in
                for r in 0 ..< x.rows {
                    let row = r * n
                    let (mean, scale) = meanAndInverseDeviation(src.baseAddress! + row, count: n, eps: eps)
                    for i in 0 ..< n { dst[row + i] = (src[row + i] - mean) * scale * weight[i] + bias[i] }
                }
            }
        }
        return y
    }

    /// x += y, elementwise.
    package static func add(_ x: inout Activations, _ y: Activations) {
        precondition(x.data.count == y.data.count, "shapes differ")
        x.data.withUnsafeMutableBufferPointer { a in
            y.data.withUnsafeBufferPointer { b in
                for i in 0 ..< a.count { a[i] += b[i] }
            }
        }
    }

    /// The activation functions of the supported architectures.
    package enum Activation: Sendable {
        /// x · sigmoid(x) (llama family).
        case silu
        /// The exact, erf-based GELU (BERT).
        case gelu
        /// The tanh approximation of GELU (GPT-2's gelu_new).
        case geluTanh

        /// The hidden_act names qs implements.
        package static let names = ["silu", "swish", "gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast"]

        package init?(name: String) {
            switch name {
            case "silu", "swish": self = .silu
            case "gelu": self = .gelu
            case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": self = .geluTanh
            default: return nil
            }
        }

        /// The activation a configuration names under `key`; an error naming the key when qs
        /// does not implement it (the config readers reject it first; GGUF metadata has none).
        init(_ config: ModelConfig, key: String, path: String) throws {
            guard let activation = Activation(name: config.hiddenAct) else {
                throw EngineError(path: path, subject: key, "'\(config.hiddenAct)' is not supported; qs implements \(Self.names.joined(separator: ", "))")
            }
            self = activation
        }

        @inline(__always)
        package func apply(_ x: Float) -> Float {
            switch self {
            case .silu: return x / (1 + Foundation.exp(-x))
            case .gelu: return 0.5 * x * (1 + Foundation.erf(x / Float(2).squareRoot()))
            case .geluTanh:
                let c: Float = 0.7978845608028654
                return 0.5 * x * (1 + Foundation.tanh(c * (x + 0.044715 * x * x * x)))
            }
        }
    }

    /// Applies `activation` in place.
    package static func activate(_ x: inout Activations, _ activation: Activation) {
        x.data.withUnsafeMutableBufferPointer { a in
            for i in 0 ..< a.count { a[i] = activation.apply(a[i]) }
        }
    }

    /// gate = act(gate) · up, elementwise (the gated MLP of the llama family).
    package static func gatedActivate(_ gate: inout Activations, up: Activations, _ activation: Activation) {
        if case .silu = activation {
            gate.data.withUnsafeMutableBufferPointer { g in
                up.data.withUnsafeBufferPointer { u in qs_silu_mul(g.baseAddress!, u.baseAddress!, g.count) }
            }
            return
        }
        gate.data.withUnsafeMutableBufferPointer { g in
            up.data.withUnsafeBufferPointer { u in
                for i in 0 ..< g.count { g[i] = activation.apply(g[i]) * u[i] }
            }
        }
    }

    /// cos and sin of the rotary angles for positions start ..< start + rows: [rows, headDim/2]
    /// each, computed as transformers does (inverse frequencies in fp32, angle in fp32).
    package struct RotaryTable: Sendable {
        package var start: Int
        package var rows: Int
        package var cosines: [Float]
        package var sines: [Float]

        package init(start: Int, rows: Int, headDim: Int, theta: Double) {
            self.start = start
            self.rows = rows
            let half = headDim / 2
            var inverse = [Float](repeating: 0, count: half)
            for i in 0 ..< half { inverse[i] = Float(1 / Foundation.pow(theta, Double(2 * i) / Double(headDim))) }
            cosines = [Float](repeating: 0, count: rows * half)
            sines = cosines
            for r in 0 ..< rows {
                for i in 0 ..< half {
                    let angle = Float(start + r) * inverse[i]
                    cosines[r * half + i] = Foundation.cos(angle)
                    sines[r * half + i] = Foundation.sin(angle)
                }
            }
        }
    }

    /// Rotary position embedding as transformers applies it (rotate_half: the two halves of
    /// each head pair up), in place, for `heads` heads per row.
    package static func applyRotary(_ x: inout Activations, heads: Int, headDim: Int, table: RotaryTable) {
        precondition(table.rows == x.rows, "rotary table does not match the rows")
        let half = headDim / 2
        let cols = x.cols
        x.data.withUnsafeMutableBufferPointer { a in
            table.cosines.withUnsafeBufferPointer { cosines in
                table.sines.withUnsafeBufferPointer { sines in
                    for r in 0 ..< x.rows {
                        let angles = r * half
                        for h in 0 ..< heads {
                            let base = r * cols + h * headDim
                            for i in 0 ..< half {
                                let first = a[base + i]
                                let second = a[base + i + half]
                                a[base + i] = first * cosines[angles + i] - second * sines[angles + i]
                                a[base + i + half] = second * cosines[angles + i] + first * sines[angles + i]
                            }
                        }
                    }
                }
            }
        }
    }

    /// Softmax over `count` values in place, in fp32 with the maximum subtracted.
    @inline(__always)
    package static func softmax(_ row: UnsafeMutablePointer<Float>, count: Int) {
        let maximum = FastMath.maximum(row, count: count)
        let inverse = Float(1 / FastMath.expShifted(row, count: count, shift: maximum))
        for i in 0 ..< count { row[i] *= inverse }
    }

    /// Up to this many new rows, attention runs in the decode kernel (one task per head and row).
    package static let decodeAttentionRows = 4

    /// Scaled dot-product attention for the new rows `q` ([rows, heads·d]) against keys and
    /// values `k`, `v` ([keys, kvHeads·d]) whose first `keys - rows` entries are the past.
    /// Causal: row r sees keys up to past + r, and rows go in blocks of 128 that multiply only
    /// against the keys they can see (at 512 tokens that skips 3/8 of the attention products).
    /// `keyMask` (per key, true = attend) applies to encoders. Returns [rows, heads·d]. Up to
    /// `decodeAttentionRows` rows run in `qs_attention_rows` on the decode pool, more through GEMM.
    package static func attention(
        q: Activations, k: UnsafePointer<Float>, v: UnsafePointer<Float>, keys: Int, heads: Int,
        kvHeads: Int, headDim: Int, causal: Bool, keyMask: [Bool]? = nil
    ) -> Activations {
        let rows = q.rows
        if rows <= decodeAttentionRows {
            // Decoding: a task per head and row on the decode pool, no GEMM calls.
            var out = Activations(rows: rows, cols: heads * headDim)
            let mask = keyMask.map { $0.map { UInt8($0 ? 1 : 0) } }
            q.data.withUnsafeBufferPointer { qp in
                out.data.withUnsafeMutableBufferPointer { op in
                    func run(_ m: UnsafePointer<UInt8>?) {
                        qs_attention_rows(
                            qp.baseAddress!, rows, k, v, keys, Int32(heads), Int32(kvHeads), Int32(headDim), causal ? 1 : 0, m,
                            op.baseAddress!, Int32(BlockKernels.path.rawValue), Int32(ThreadCount.configured))
                    }
                    if let mask { mask.withUnsafeBufferPointer { run($0.baseAddress!) } } else { run(nil) }
                }
            }
            return out
        }
        let past = keys - rows
        let group = heads / kvHeads
        let kvStride = kvHeads * headDim
        let qStride = heads * headDim
        let scale = 1 / Float(headDim).squareRoot()
        let block = causal ? 128 : max(rows, 1)
        var out = Activations(rows: rows, cols: qStride)
        var scores = [Float](repeating: 0, count: min(block, rows) * keys)
        q.data.withUnsafeBufferPointer { qp in
            out.data.withUnsafeMutableBufferPointer { op in
                scores.withUnsafeMutableBufferPointer { sp in
                    for h in 0 ..< heads {
                        let kvHead = h / group
                        var first = 0
                        while first < rows {
                            let last = min(rows, first + block)
                            let count = last - first
                            let visibleKeys = causal ? past + last : keys
                            GEMM.sgemm(
                                transA: false, transB: true, m: count, n: visibleKeys, k: headDim, alpha: scale,
                                a: qp.baseAddress! + first * qStride + h * headDim, lda: qStride,
                                b: k + kvHead * headDim, ldb: kvStride, beta: 0, c: sp.baseAddress!, ldc: visibleKeys)
                            for r in 0 ..< count {
                                let row = sp.baseAddress! + r * visibleKeys
                                // Keys past the causal limit get weight 0 without computing exp.
                                let visible = causal ? past + first + r + 1 : visibleKeys
                                if let keyMask {
                                    for j in 0 ..< visible where !keyMask[j] { row[j] = -.infinity }
                                }
                                softmax(row, count: visible)
                                for j in visible ..< visibleKeys { row[j] = 0 }
                            }
                            GEMM.sgemm(
                                transA: false, transB: false, m: count, n: headDim, k: visibleKeys, alpha: 1,
                                a: sp.baseAddress!, lda: visibleKeys, b: v + kvHead * headDim, ldb: kvStride,
                                beta: 0, c: op.baseAddress! + first * qStride + h * headDim, ldc: qStride)
                            first = last
                        }
                    }
                }
            }
        }
        return out
    }
}
