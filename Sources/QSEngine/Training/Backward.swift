import Foundation

/// The backward passes of the operations the supported architectures compute, written against
/// the forward kernels' definitions (`Kernels`): each takes the gradient of the loss with
/// respect to an operation's output and what the forward pass kept, and returns (or adds to)
/// the gradients with respect to its inputs and parameters. Every matrix product goes through
/// `GEMM.sgemm`. Rows are tokens; a batch of sequences is their rows one after another.
package enum Backward {
    // MARK: Linear

    /// y = x · Wᵀ + b for x [rows, in], W [out, in] (row-major, as nn.Linear stores it).
    package static func linear(_ x: Activations, weight: [Float], out: Int, bias: [Float]?) -> Activations {
        let rows = x.rows
        let inputs = x.cols
        precondition(weight.count == out * inputs, "Backward.linear: weight does not match the input width")
        var y = Activations(rows: rows, cols: out)
        guard rows > 0 else { return y }
        x.data.withUnsafeBufferPointer { a in
            weight.withUnsafeBufferPointer { w in
                y.data.withUnsafeMutableBufferPointer { c in
                    GEMM.sgemm(
                        transA: false, transB: true, m: rows, n: out, k: inputs, alpha: 1, a: a.baseAddress!, lda: inputs,
                        b: w.baseAddress!, ldb: inputs, beta: 0, c: c.baseAddress!, ldc: out)
                    if let bias {
                        for r in 0 ..< rows {
                            for j in 0 ..< out { c[r * out + j] += bias[j] }
                        }
                    }
                }
            }
        }
        return y
    }

    /// The linear layer's backward: returns dx = dy · W, adds dyᵀ · x to `weightGrad` and the
    /// column sums of dy to `biasGrad` when they are given.
    package static func linear(
        _ dy: Activations, x: Activations, weight: [Float], weightGrad: UnsafeMutablePointer<Float>?,
        biasGrad: UnsafeMutablePointer<Float>?, needsInput: Bool = true
    ) -> Activations? {
        let rows = dy.rows
        let out = dy.cols
        let inputs = x.cols
        precondition(x.rows == rows && weight.count == out * inputs, "Backward.linear: shapes do not match")
        guard rows > 0 else { return Activations(rows: 0, cols: inputs) }
        dy.data.withUnsafeBufferPointer { g in
            if let weightGrad {
                x.data.withUnsafeBufferPointer { a in
                    GEMM.sgemm(
                        transA: true, transB: false, m: out, n: inputs, k: rows, alpha: 1, a: g.baseAddress!, lda: out,
                        b: a.baseAddress!, ldb: inputs, beta: 1, c: weightGrad, ldc: inputs)
                }
            }
            if let biasGrad {
                for r in 0 ..< rows {
                    for j in 0 ..< out { biasGrad[j] += g[r * out + j] }
                }
            }
        }
        guard needsInput else { return nil }
        var dx = Activations(rows: rows, cols: inputs)
        dy.data.withUnsafeBufferPointer { g in
            weight.withUnsafeBufferPointer { w in
                dx.data.withUnsafeMutableBufferPointer { c in
                    GEMM.sgemm(
                        transA: false, transB: false, m: rows, n: inputs, k: out, alpha: 1, a: g.baseAddress!, lda: out,
                        b: w.baseAddress!, ldb: inputs, beta: 0, c: c.baseAddress!, ldc: inputs)
                }
            }
        }
        return dx
    }

    // MARK: Norms

    /// RMSNorm's backward for y = x · r · w, r = 1 / sqrt(mean(x²) + eps): returns dx and adds
    /// Σ_rows dy · x · r to `weightGrad` when given.
    package static func rmsNorm(
        _ dy: Activations, x: Activations, weight: [Float], eps: Float, weightGrad: UnsafeMutablePointer<Float>?
    ) -> Activations {
        let n = x.cols
        var dx = Activations(rows: x.rows, cols: n)
        let workers = x.rows >= 64 ? min(ThreadCount.configured, x.rows) : 1
        var partial = [Float](repeating: 0, count: weightGrad == nil ? 0 : workers * n)
        x.data.withUnsafeBufferPointer { xs in
            dy.data.withUnsafeBufferPointer { gs in
                dx.data.withUnsafeMutableBufferPointer { out in
                    partial.withUnsafeMutableBufferPointer { partialBuffer in
                        let (xb, gb, ob, pb) = (xs.baseAddress!, gs.baseAddress!, out.baseAddress!, partialBuffer.baseAddress)
                        let rows = x.rows
                        parallelFor(workers, chunks: workers) { parts in
                            for part in parts {
                                let first = part * rows / workers
                                let last = (part + 1) * rows / workers
                                for row in first ..< last {
                                    let base = row * n
                                    var squares: Float = 0
                                    for i in 0 ..< n { squares += xb[base + i] * xb[base + i] }
                                    let r = 1 / (squares / Float(n) + eps).squareRoot()
                                    var dot: Float = 0
                                    for i in 0 ..< n { dot += gb[base + i] * weight[i] * xb[base + i] }
                                    let k = r * r * r * dot / Float(n)
                                    for i in 0 ..< n { ob[base + i] = r * gb[base + i] * weight[i] - k * xb[base + i] }
                                    if let pb {
                                        let accumulator = pb + part * n
                                        for i in 0 ..< n { accumulator[i] += gb[base + i] * xb[base + i] * r }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if let weightGrad {
            for part in 0 ..< workers {
                for i in 0 ..< n { weightGrad[i] += partial[part * n + i] }
            }
        }
        return dx
    }

    /// LayerNorm's backward for y = (x − μ) · r · w + b: returns dx, adds to the weight's and
    /// bias's gradients when given.
    package static func layerNorm(
        _ dy: Activations, x: Activations, weight: [Float], eps: Float, weightGrad: UnsafeMutablePointer<Float>?,
        biasGrad: UnsafeMutablePointer<Float>?
    ) -> Activations {
        let n = x.cols
        var dx = Activations(rows: x.rows, cols: n)
        var normed = [Float](repeating: 0, count: n)
        x.data.withUnsafeBufferPointer { xs in
            dy.data.withUnsafeBufferPointer { gs in
                dx.data.withUnsafeMutableBufferPointer { out in
                    for row in 0 ..< x.rows {
                        let base = row * n
                        let (mean, r) = Kernels.meanAndInverseDeviation(xs.baseAddress! + base, count: n, eps: eps)
                        var sumG: Float = 0
                        var sumGX: Float = 0
                        for i in 0 ..< n {
                            normed[i] = (xs[base + i] - mean) * r
                            let g = gs[base + i] * weight[i]
                            sumG += g
                            sumGX += g * normed[i]
                        }
                        for i in 0 ..< n {
                            let g = gs[base + i] * weight[i]
                            out[base + i] = r * (g - sumG / Float(n) - normed[i] * sumGX / Float(n))
                        }
                        if let weightGrad { for i in 0 ..< n { weightGrad[i] += gs[base + i] * normed[i] } }
                        if let biasGrad { for i in 0 ..< n { biasGrad[i] += gs[base + i] } }
                    }
                }
            }
        }
        return dx
    }

    // MARK: Rotary positions

    /// Rotary positions for a batch of sequences of `length` rows each (every sequence starts at
    /// position 0), forward (`inverse: false`) or its backward (the transposed rotation) in place.
    package static func rotary(
        _ x: inout Activations, heads: Int, headDim: Int, length: Int, table: Kernels.RotaryTable, inverse: Bool
    ) {
        let half = headDim / 2
        let cols = x.cols
        let sign: Float = inverse ? -1 : 1
        x.data.withUnsafeMutableBufferPointer { a in
            for r in 0 ..< x.rows {
                let angles = (r % length) * half
                for h in 0 ..< heads {
                    let base = r * cols + h * headDim
                    for i in 0 ..< half {
                        let c = table.cosines[angles + i]
                        let s = sign * table.sines[angles + i]
                        let first = a[base + i]
                        let second = a[base + i + half]
                        a[base + i] = first * c - second * s
                        a[base + i + half] = second * c + first * s
                    }
                }
            }
        }
    }

    // MARK: Attention

    /// What causal attention keeps for its backward: the softmax probabilities of every
    /// sequence and head, [sequences, heads, length, length].
    package struct AttentionState: Sendable {
        package var probabilities: [Float]
    }

    /// Causal (or full) scaled dot-product attention over a batch of sequences of `length` rows,
    /// with grouped-query heads: q [rows, heads·d], k and v [rows, kvHeads·d]. Returns the
    /// output [rows, heads·d] and the probabilities for the backward.
    package static func attention(
        q: Activations, k: Activations, v: Activations, heads: Int, kvHeads: Int, headDim: Int, length: Int, causal: Bool
    ) -> (Activations, AttentionState) {
        let sequences = q.rows / length
        let qStride = heads * headDim
        let kvStride = kvHeads * headDim
        let group = heads / kvHeads
        let scale = 1 / Float(headDim).squareRoot()
        var out = Activations(rows: q.rows, cols: qStride)
        var probabilities = [Float](repeating: 0, count: sequences * heads * length * length)
        q.data.withUnsafeBufferPointer { qp in
            k.data.withUnsafeBufferPointer { kp in
                v.data.withUnsafeBufferPointer { vp in
                    out.data.withUnsafeMutableBufferPointer { op in
                        probabilities.withUnsafeMutableBufferPointer { pp in
                            let (qb, kb, vb, ob, pb) = (qp.baseAddress!, kp.baseAddress!, vp.baseAddress!, op.baseAddress!, pp.baseAddress!)
                            perGroup(sequences * kvHeads) { task in
                                let s = task / kvHeads
                                for h in (task % kvHeads) * group ..< (task % kvHeads + 1) * group {
                                    let p = pb + (s * heads + h) * length * length
                                    let row0 = s * length
                                    GEMM.sgemm(
                                        transA: false, transB: true, m: length, n: length, k: headDim, alpha: scale,
                                        a: qb + row0 * qStride + h * headDim, lda: qStride,
                                        b: kb + row0 * kvStride + (h / group) * headDim, ldb: kvStride,
                                        beta: 0, c: p, ldc: length)
                                    for r in 0 ..< length {
                                        let visible = causal ? r + 1 : length
                                        Kernels.softmax(p + r * length, count: visible)
                                        for j in visible ..< length { p[r * length + j] = 0 }
                                    }
                                    GEMM.sgemm(
                                        transA: false, transB: false, m: length, n: headDim, k: length, alpha: 1,
                                        a: p, lda: length, b: vb + row0 * kvStride + (h / group) * headDim, ldb: kvStride,
                                        beta: 0, c: ob + row0 * qStride + h * headDim, ldc: qStride)
                                }
                            }
                        }
                    }
                }
            }
        }
        return (out, AttentionState(probabilities: probabilities))
    }

    /// Attention's backward: the gradients of q, k and v from the output's.
    package static func attention(
        _ dOut: Activations, q: Activations, k: Activations, v: Activations, state: AttentionState, heads: Int, kvHeads: Int,
        headDim: Int, length: Int
    ) -> (dq: Activations, dk: Activations, dv: Activations) {
        let sequences = q.rows / length
        let qStride = heads * headDim
        let kvStride = kvHeads * headDim
        let group = heads / kvHeads
        let scale = 1 / Float(headDim).squareRoot()
        var dq = Activations(rows: q.rows, cols: qStride)
        var dk = Activations(rows: k.rows, cols: kvStride)
        var dv = Activations(rows: v.rows, cols: kvStride)
        q.data.withUnsafeBufferPointer { qp in
            k.data.withUnsafeBufferPointer { kp in
                v.data.withUnsafeBufferPointer { vp in
                    dOut.data.withUnsafeBufferPointer { gp in
                        state.probabilities.withUnsafeBufferPointer { pp in
                            dq.data.withUnsafeMutableBufferPointer { dqp in
                                dk.data.withUnsafeMutableBufferPointer { dkp in
                                    dv.data.withUnsafeMutableBufferPointer { dvp in
                                        let (qb, kb, vb, gb, pb) = (qp.baseAddress!, kp.baseAddress!, vp.baseAddress!, gp.baseAddress!, pp.baseAddress!)
                                        let (dqb, dkb, dvb) = (dqp.baseAddress!, dkp.baseAddress!, dvp.baseAddress!)
                                        // A task per sequence and key/value group: its heads' dK and dV rows are its own.
                                        perGroup(sequences * kvHeads) { task in
                                            let s = task / kvHeads
                                            let d = UnsafeMutablePointer<Float>.allocate(capacity: length * length)
                                            defer { d.deallocate() }
                                            for h in (task % kvHeads) * group ..< (task % kvHeads + 1) * group {
                                                let p = pb + (s * heads + h) * length * length
                                                let row0 = s * length
                                                let qh = row0 * qStride + h * headDim
                                                let kvh = row0 * kvStride + (h / group) * headDim
                                                // dV += Pᵀ · dO
                                                GEMM.sgemm(
                                                    transA: true, transB: false, m: length, n: headDim, k: length, alpha: 1,
                                                    a: p, lda: length, b: gb + qh, ldb: qStride, beta: 1, c: dvb + kvh, ldc: kvStride)
                                                // dP = dO · Vᵀ
                                                GEMM.sgemm(
                                                    transA: false, transB: true, m: length, n: length, k: headDim, alpha: 1,
                                                    a: gb + qh, lda: qStride, b: vb + kvh, ldb: kvStride, beta: 0, c: d, ldc: length)
                                                // dS = P ⊙ (dP − Σⱼ dPⱼ Pⱼ)
                                                for r in 0 ..< length {
                                                    let pr = p + r * length
                                                    let dr = d + r * length
                                                    var dot: Float = 0
                                                    for j in 0 ..< length { dot += pr[j] * dr[j] }
                                                    for j in 0 ..< length { dr[j] = pr[j] * (dr[j] - dot) }
                                                }
                                                // dQ = scale · dS · K, dK += scale · dSᵀ · Q
                                                GEMM.sgemm(
                                                    transA: false, transB: false, m: length, n: headDim, k: length, alpha: scale,
                                                    a: d, lda: length, b: kb + kvh, ldb: kvStride, beta: 0, c: dqb + qh, ldc: qStride)
                                                GEMM.sgemm(
                                                    transA: true, transB: false, m: length, n: headDim, k: length, alpha: scale,
                                                    a: d, lda: length, b: qb + qh, ldb: qStride, beta: 1, c: dkb + kvh, ldc: kvStride)
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (dq, dk, dv)
    }

    /// Runs `body` for each task below `count` spread over the configured threads, with
    /// OpenBLAS single-threaded meanwhile (attention's products are small).
    static func perGroup(_ count: Int, _ body: (Int) -> Void) {
        let workers = min(ThreadCount.configured, count)
        guard workers > 1 else {
            for task in 0 ..< count { body(task) }
            return
        }
        BLAS.setThreads(1)
        defer { BLAS.setThreads(ThreadCount.configured) }
        parallelFor(count, chunks: workers) { range in for task in range { body(task) } }
    }

    // MARK: Activations

    /// The derivative of `activation` at x.
    @inline(__always)
    package static func derivative(_ activation: Kernels.Activation, _ x: Float) -> Float {
        switch activation {
        case .silu:
            let s = 1 / (1 + Foundation.exp(-x))
            return s * (1 + x * (1 - s))
        case .gelu:
            let cdf = 0.5 * (1 + Foundation.erf(x / Float(2).squareRoot()))
            let pdf = Foundation.exp(-0.5 * x * x) / Float(2 * Double.pi).squareRoot()
            return cdf + x * pdf
        case .geluTanh:
            let c: Float = 0.7978845608028654
            let inner = c * (x + 0.044715 * x * x * x)
            let t = Foundation.tanh(inner)
            return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
        }
    }

    /// The gated MLP's backward for h = act(gate) · up: the gradients of gate and up.
    package static func gatedActivation(
        _ dh: Activations, gate: Activations, up: Activations, _ activation: Kernels.Activation
    ) -> (dGate: Activations, dUp: Activations) {
        var dGate = Activations(rows: gate.rows, cols: gate.cols)
        var dUp = dGate
        dh.data.withUnsafeBufferPointer { d in
            gate.data.withUnsafeBufferPointer { g in
                up.data.withUnsafeBufferPointer { u in
                    dGate.data.withUnsafeMutableBufferPointer { dg in
                        dUp.data.withUnsafeMutableBufferPointer { du in
                            let (db, gb, ub, dgb, dub) = (d.baseAddress!, g.baseAddress!, u.baseAddress!, dg.baseAddress!, du.baseAddress!)
                            parallelFor(d.count, chunks: d.count >= 1 << 16 ? ThreadCount.configured : 1) { range in
                                for i in range {
                                    dub[i] = db[i] * activation.apply(gb[i])
                                    dgb[i] = db[i] * ub[i] * derivative(activation, gb[i])
                                }
                            }
                        }
                    }
                }
            }
        }
        return (dGate, dUp)
    }

    /// An elementwise activation's backward for y = act(x).
    package static func activation(_ dy: Activations, x: Activations, _ activation: Kernels.Activation) -> Activations {
        var dx = dy
        for i in 0 ..< dx.data.count { dx.data[i] *= derivative(activation, x.data[i]) }
        return dx
    }

    // MARK: Embeddings

    /// Adds each row of dx to the embedding row of its token: the lookup's backward.
    package static func embedding(_ dx: Activations, ids: [Int], into grad: UnsafeMutablePointer<Float>) {
        let width = dx.cols
        dx.data.withUnsafeBufferPointer { g in
            for (row, id) in ids.enumerated() {
                let target = grad + id * width
                for i in 0 ..< width { target[i] += g[row * width + i] }
            }
        }
    }

    // MARK: Losses over the vocabulary

    /// The objective of a language-model loss, per row of the head's input.
    package enum Objective {
        /// Cross entropy against each row's target token (rows with a negative target count for nothing).
        case crossEntropy(targets: [Int])
        /// T² · KL(teacher ‖ student) at temperature T, against the teacher's logits [rows, vocab].
        case distillation(teacherLogits: UnsafePointer<Float>, temperature: Float)
    }

    /// The mean loss over the counted rows of `normed` · headᵀ, its gradient with respect to
    /// `normed` (returned), and headᵀ's gradient added to `headGrad` when given. Rows go in
    /// chunks so the logits held are bounded. `scale` multiplies the mean (a batch's share).
    package static func vocabularyLoss(
        normed: Activations, head: [Float], vocab: Int, objective: Objective, counted: Int, headGrad: UnsafeMutablePointer<Float>?
    ) -> (loss: Double, dNormed: Activations) {
        let rows = normed.rows
        let width = normed.cols
        precondition(head.count == vocab * width, "Backward.vocabularyLoss: head does not match")
        var dNormed = Activations(rows: rows, cols: width)
        let chunk = max(1, min(rows, (1 << 26) / max(1, vocab)))
        var logits = [Float](repeating: 0, count: chunk * vocab)
        var total: Double = 0
        let denominator = Float(max(1, counted))
        normed.data.withUnsafeBufferPointer { a in
            head.withUnsafeBufferPointer { w in
                logits.withUnsafeMutableBufferPointer { lp in
                    dNormed.data.withUnsafeMutableBufferPointer { dn in
                        var first = 0
                        while first < rows {
                            let count = min(chunk, rows - first)
                            let l = lp.baseAddress!
                            GEMM.sgemm(
                                transA: false, transB: true, m: count, n: vocab, k: width, alpha: 1, a: a.baseAddress! + first * width,
                                lda: width, b: w.baseAddress!, ldb: width, beta: 0, c: l, ldc: vocab)
                            for r in 0 ..< count {
                                let row = l + r * vocab
                                switch objective {
                                case .crossEntropy(let targets):
                                    let target = targets[first + r]
                                    guard target >= 0 else {
                                        for j in 0 ..< vocab { row[j] = 0 }
                                        continue
                                    }
                                    let maximum = FastMath.maximum(row, count: vocab)
                                    let sum = FastMath.expShifted(row, count: vocab, shift: maximum)
                                    // row now holds e^(c − max): the probabilities after dividing by sum.
                                    let targetProbability = Double(row[target]) / sum
                                    total -= Foundation.log(targetProbability)
                                    let inverse = Float(1 / sum) / denominator
                                    for j in 0 ..< vocab { row[j] *= inverse }
                                    row[target] -= 1 / denominator
                                case .distillation(let teacherLogits, let temperature):
                                    let teacher = teacherLogits + (first + r) * vocab
                                    var loss: Double = 0
                                    // Student and teacher log-softmax at temperature T.
                                    var studentMax = -Float.infinity
                                    var teacherMax = -Float.infinity
                                    for j in 0 ..< vocab {
                                        studentMax = max(studentMax, row[j] / temperature)
                                        teacherMax = max(teacherMax, teacher[j] / temperature)
                                    }
                                    var studentSum: Double = 0
                                    var teacherSum: Double = 0
                                    for j in 0 ..< vocab {
                                        studentSum += Foundation.exp(Double(row[j] / temperature - studentMax))
                                        teacherSum += Foundation.exp(Double(teacher[j] / temperature - teacherMax))
                                    }
                                    let studentLog = Foundation.log(studentSum) + Double(studentMax)
                                    let teacherLog = Foundation.log(teacherSum) + Double(teacherMax)
                                    let factor = temperature / denominator
                                    for j in 0 ..< vocab {
                                        let ls = Double(row[j] / temperature) - studentLog
                                        let lt = Double(teacher[j] / temperature) - teacherLog
                                        let pt = Foundation.exp(lt)
                                        loss += pt * (lt - ls)
                                        row[j] = factor * Float(Foundation.exp(ls) - pt)
                                    }
                                    total += Double(temperature * temperature) * loss
                                }
                            }
                            // dNormed = dLogits · head; headGrad += dLogitsᵀ · normed
                            GEMM.sgemm(
                                transA: false, transB: false, m: count, n: width, k: vocab, alpha: 1, a: l, lda: vocab,
                                b: w.baseAddress!, ldb: width, beta: 0, c: dn.baseAddress! + first * width, ldc: width)
                            if let headGrad {
                                GEMM.sgemm(
                                    transA: true, transB: false, m: vocab, n: width, k: count, alpha: 1, a: l, lda: vocab,
                                    b: a.baseAddress! + first * width, ldb: width, beta: 1, c: headGrad, ldc: width)
                            }
                            first += count
                        }
                    }
                }
            }
        }
        return (total / Double(max(1, counted)), dNormed)
    }
}
