import Foundation

/// The sum of xxᵀ over the inputs a linear layer saw: the Hessian (up to a factor) of its
/// layer-wise reconstruction error, which GPTQ and SparseGPT work from.
package final class HessianAccumulator: @unchecked Sendable {
    package let size: Int
    /// XᵀX summed so far, upper triangle only (symmetric rank-k updates do half the work), in
    /// as many partial sums as threads have added at once: a thread takes a free one, adds its
    /// batch outside the lock, and gives it back, so that observing threads never wait for each
    /// other's products (one shared sum under the lock serialised a third of the work of
    /// GPTQ's observing pass). Read, they are summed into the first.
    private var partials: [[Float]]
    private var free: [Int]
    package private(set) var tokens = 0
    /// Per input channel, Σ|x| and max |x| over the tokens (AWQ's and SmoothQuant's statistics).
    package private(set) var absoluteSums: [Double]
    package private(set) var absoluteMaxima: [Float]
    /// Per input channel, Σx² over the tokens (Wanda's input norms, without XᵀX).
    package private(set) var squareSums: [Double]
    /// Σ over the batches added of the batch's largest |x|, and the batches: their mean is the
    /// range a static activation grid takes (a moving-average observer's, rather than the one
    /// largest value ever seen, which a single outlier token sets).
    package private(set) var batchMaximumSum = 0.0
    package private(set) var batches = 0
    /// Sequences may be observed from several threads at once.
    private let lock = NSLock()

    /// Whether XᵀX is summed (without it, only the per-channel statistics are).
    package let collectsGram: Bool

    package init(size: Int, gram: Bool = true) {
        self.size = size
        collectsGram = gram
        partials = [[Float](repeating: 0, count: gram ? size * size : 0)]
        free = [0]
        absoluteSums = [Double](repeating: 0, count: size)
        absoluteMaxima = [Float](repeating: 0, count: size)
        squareSums = [Double](repeating: 0, count: size)
    }

    /// The upper triangle of XᵀX, the partial sums summed (not to be read while adding).
    private var upper: [Float] {
        lock.withLock {
            if partials.count > 1 {
                var sum = partials[0]
                for partial in partials.dropFirst() { for i in sum.indices { sum[i] += partial[i] } }
                partials = [sum]
                free = [0]
            }
            return partials[0]
        }
    }

    /// The diagonal of XᵀX: Σx² per input channel.
    package var diagonal: [Float] {
        guard collectsGram else { return [] }
        let upper = upper
        return (0 ..< size).map { upper[$0 * size + $0] }
    }

    /// Per input channel, the mean |x| over the tokens seen.
    package var absoluteMeans: [Float] {
        absoluteSums.map { Float($0 / Double(max(tokens, 1))) }
    }

    /// The whole symmetric matrix, row-major.
    package var matrix: [Float] {
        let upper = upper
        var full = upper
        for row in 0 ..< size {
            for column in 0 ..< row { full[row * size + column] = upper[column * size + row] }
        }
        return full
    }

    /// Adds XᵀX of one batch of inputs, x [rows, size].
    package func add(_ x: Activations) {
        precondition(x.cols == size, "HessianAccumulator: inputs of \(x.cols) features, expected \(size)")
        guard x.rows > 0 else { return }
        var sums = [Double](repeating: 0, count: size)
        var squares = [Double](repeating: 0, count: size)
        var maxima = [Float](repeating: 0, count: size)
        x.data.withUnsafeBufferPointer { a in
            for r in 0 ..< x.rows {
                let row = a.baseAddress! + r * size
                for c in 0 ..< size {
                    let v = abs(row[c])
                    sums[c] += Double(v)
                    squares[c] += Double(v) * Double(v)
                    if v > maxima[c] { maxima[c] = v }
                }
            }
        }
        if collectsGram {
            let slot = lock.withLock {
                if let slot = free.popLast() { return slot }
                partials.append([Float](repeating: 0, count: size * size))
                return partials.count - 1
            }
            // The slot is this thread's until it is given back; the array is taken out so that
            // no other thread's append moves it meanwhile.
            var sum = lock.withLock {
                let taken = partials[slot]
                partials[slot] = []
                return taken
            }
            x.data.withUnsafeBufferPointer { a in
                sum.withUnsafeMutableBufferPointer { GEMM.accumulateGram(a.baseAddress!, rows: x.rows, columns: size, into: $0.baseAddress!) }
            }
            lock.withLock {
                partials[slot] = sum
                free.append(slot)
            }
        }
        lock.withLock {
            tokens += x.rows
            for c in 0 ..< size {
                absoluteSums[c] += sums[c]
                squareSums[c] += squares[c]
                absoluteMaxima[c] = max(absoluteMaxima[c], maxima[c])
            }
            batchMaximumSum += Double(maxima.max() ?? 0)
            batches += 1
        }
    }
}

/// GPTQ (Frantar et al., 2022): quantizes a weight column by column in the order of the inverse
/// Hessian's Cholesky factor, spreading each column's rounding error over the columns not yet
/// quantized so that the layer's output on the calibration inputs moves as little as possible.
/// Lazy updates in blocks of columns; optional act-order (columns by decreasing Hessian
/// diagonal), with static groups when act-order meets groups (group parameters fixed from the
/// weights before any update, in the original column order, so the codes keep the plain
/// group layout that kernels and loaders expect).
package enum GPTQ {
    package struct Options: Sendable, Equatable {
        /// Dampening added to the Hessian's diagonal, as a share of its mean.
        package var damp: Double = 0.01
        /// Columns per lazy-update block.
        package var blockSize = 128
        package var actOrder = false
        /// With act-order and groups: fix each group's grid from the weights before any update,
        /// in the original column order (codes keep the plain group layout); without, groups
        /// follow the processing order and each column's group is recorded (GPTQ's g_idx).
        package var staticGroups = true

        package init(damp: Double = 0.01, blockSize: Int = 128, actOrder: Bool = false, staticGroups: Bool = true) {
            self.damp = damp
            self.blockSize = blockSize
            self.actOrder = actOrder
            self.staticGroups = staticGroups
        }
    }

    /// What one layer's GPTQ did.
    package struct Result: Sendable {
        package var packed: PackedWeight
        /// The dampening that made the Hessian positive definite (more than asked after retries).
        package var damp: Double
    }

    /// Quantizes W [rows, columns] (out×in) with the accumulated Hessian H [columns, columns].
    /// When H with `options.damp` is not positive definite, the dampening is raised tenfold up
    /// to three times (`onRetry` says so each time). Pruned elements (`mask`) stay zero.
    package static func quantize(
        _ weights: [Float], rows: Int, columns: Int, hessian: HessianAccumulator, scheme: QuantizationScheme,
        options: Options = Options(), mask: PruningMask? = nil, onRetry: ((Double) -> Void)? = nil
    ) throws -> Result {
        let solution = try solve(
            weights, rows: rows, columns: columns, hessian: hessian, scheme: scheme, options: options, mask: mask, selection: nil,
            onRetry: onRetry)
        return Result(packed: solution.packed!, damp: solution.damp)
    }

    /// What pruning the solver chooses as it goes (SparseGPT's adaptive mask selection).
    package enum MaskSelection: Sendable, Equatable {
        /// At the start of each block of columns, the share of the block's weights with the
        /// smallest w² / [H⁻¹]²ⱼⱼ (the error pruning each alone would cause) is pruned.
        case fraction(Double)
        /// In every `group` consecutive input columns of each row, the `group − keep` smallest
        /// w² / [H⁻¹]²ⱼⱼ are pruned, chosen when the solver reaches the group's first column.
        case nOfM(keep: Int, group: Int)
    }

    /// The outcome of `solve`: the packed weight when a scheme was given, else the updated
    /// values; the mask pruned (given, chosen, or both); the dampening used.
    package struct Solution: Sendable {
        package var packed: PackedWeight?
        package var values: [Float]?
        package var mask: PruningMask?
        package var damp: Double
    }

    /// GPTQ's and SparseGPT's shared solver (the OBS update column by column, lazily in
    /// blocks): with a scheme each column is rounded onto its grid, without one it is kept;
    /// pruned elements (`mask`, and what `selection` chooses) become 0; either way the column's
    /// error is spread over the columns not yet reached. Selection does not go with act-order.
    package static func solve(
        _ weights: [Float], rows: Int, columns: Int, hessian: HessianAccumulator, scheme: QuantizationScheme?,
        options: Options = Options(), mask given: PruningMask? = nil, selection: MaskSelection?, onRetry: ((Double) -> Void)? = nil
    ) throws -> Solution {
        guard weights.count == rows * columns, hessian.size == columns else {
            throw EngineError("GPTQ: a \(rows)×\(columns) weight with a \(hessian.size)×\(hessian.size) Hessian")
        }
        guard options.blockSize > 0, options.damp >= 0, options.damp.isFinite else {
            throw EngineError("GPTQ: blocks of \(options.blockSize) columns with dampening \(options.damp)")
        }
        if let scheme, scheme.bits < 2 { throw EngineError("GPTQ quantizes to 2 to 8 bits; bits=1 binarises by sign alone (use method=rtn)") }
        if selection != nil, options.actOrder { throw EngineError("SparseGPT's mask selection goes column by column in order: act-order does not go with it") }
        if case .nOfM(let keep, let group)? = selection, !(group > 0 && keep >= 0 && keep < group && columns % group == 0) {
            throw EngineError("\(keep):\(group) pruning needs 0 ≤ N < M with M dividing the \(columns) columns")
        }
        var mask = given
        if selection != nil, mask == nil { mask = PruningMask(keepingAll: rows * columns) }
        // The matrix in double, dead inputs (never active) given a unit diagonal and zero weights.
        var h = hessian.matrix.map(Double.init)
        var w = weights
        for i in 0 ..< columns where h[i * columns + i] == 0 {
            h[i * columns + i] = 1
            for r in 0 ..< rows { w[r * columns + i] = 0 }
        }
        // Act-order: columns by decreasing diagonal.
        var order = Array(0 ..< columns)
        if options.actOrder {
            order.sort { h[$0 * columns + $0] > h[$1 * columns + $1] || (h[$0 * columns + $0] == h[$1 * columns + $1] && $0 < $1) }
        }
        let groupSize = scheme.map { min(columns, $0.groupSize(columns: columns)) } ?? columns
        let grouped: Bool = if case .group? = scheme?.granularity { true } else { false }
        // Static groups: each group's grid from the weights before any update, original order.
        var staticGrids: [[GroupGrid]]?
        if let scheme, options.actOrder && grouped && options.staticGroups {
            staticGrids = try grids(w, rows: rows, columns: columns, first: 0, groupSize: groupSize, scheme: scheme, allGroups: true)
        }
        // Permute W's columns and H into the processing order.
        var permutedH = [Double](repeating: 0, count: columns * columns)
        for i in 0 ..< columns { for j in 0 ..< columns { permutedH[i * columns + j] = h[order[i] * columns + order[j]] } }
        let meanDiagonal = (0 ..< columns).reduce(0.0) { $0 + permutedH[$1 * columns + $1] } / Double(columns)
        var damp = options.damp
        var inverse: [Double]?
        for attempt in 0 ..< 4 {
            var dampened = permutedH
            for i in 0 ..< columns { dampened[i * columns + i] += damp * meanDiagonal }
            inverse = Cholesky.upperFactorOfInverse(dampened, n: columns)
            if inverse != nil { break }
            if attempt < 3 {
                damp = damp > 0 ? damp * 10 : 0.01
                onRetry?(damp)
            }
        }
        guard let hinvDouble = inverse else {
            throw EngineError("the Hessian is not positive definite even with dampening \(damp): the calibration inputs do not span this layer")
        }
        let hinv = hinvDouble.map(Float.init)
        // Columns of W in processing order, each contiguous over rows: wt[i][r] = W[r, order[i]].
        var wt = [Float](repeating: 0, count: columns * rows)
        for i in 0 ..< columns { for r in 0 ..< rows { wt[i * rows + r] = w[r * columns + order[i]] } }
        var codes = [UInt8](repeating: 0, count: scheme == nil ? 0 : rows * columns)
        var values = [Float](repeating: 0, count: scheme == nil ? rows * columns : 0)
        let scaleCount = scheme?.granularity == .tensor ? 1 : rows * ((columns + groupSize - 1) / groupSize)
        var scales = [Float](repeating: 0, count: scaleCount)
        var zeros = [Float](repeating: 0, count: scaleCount)
        var groupOfPosition = [Int32](repeating: 0, count: columns)
        // Row grids for the group being quantized (per channel and per tensor: fixed at the start).
        var current: [GroupGrid] = []
        if let scheme, !grouped {
            if scheme.granularity == .tensor {
                let all = try w.withUnsafeBufferPointer { try GroupGrid.fit($0, scheme) }
                current = Array(repeating: all, count: rows)
            } else {
                current = try grids(w, rows: rows, columns: columns, first: 0, groupSize: columns, scheme: scheme, allGroups: false)[0]
            }
            for r in 0 ..< rows {
                let index = scheme.granularity == .tensor ? 0 : r
                scales[index] = current[r].scale
                zeros[index] = current[r].zero
            }
        }
        let zeroCodes = { (grid: GroupGrid) in UInt8(grid.zero.rounded(.down)) }
        // N:M groups never straddle a block.
        var blockSize = options.blockSize
        if case .nOfM(_, let group)? = selection { blockSize = max(group, blockSize / group * group) }
        var errors = [Float](repeating: 0, count: blockSize * rows)
        // w² / [H⁻¹]²ⱼⱼ of column position j, row r: what pruning the weight alone costs.
        func pruningScore(_ j: Int, _ r: Int) -> Float {
            let d = hinv[j * columns + j]
            let v = wt[j * rows + r]
            return v * v / (d * d)
        }
        var column = 0
        while column < columns {
            let end = min(columns, column + blockSize)
            if case .fraction(let fraction)? = selection {
                // The block's mask at once, from its columns as the block begins.
                var scores = [Float](repeating: 0, count: (end - column) * rows)
                for j in column ..< end { for r in 0 ..< rows { scores[(j - column) * rows + r] = pruningScore(j, r) } }
                scores.withUnsafeBufferPointer { sp in
                    guard let threshold = Selection.threshold(pruning: Pruner.prunedCount(sp.count, fraction), of: [sp]) else { return }
                    var equalLeft = threshold.equalPruned
                    // Scores are column by column; the mask is out×in.
                    Selection.forEachPruned(sp, below: threshold, equalLeft: &equalLeft) { index in
                        mask!.prune((index % rows) * columns + column + index / rows)
                    }
                }
            }
            // The block's columns as it began: group grids are fitted to these, not to the
            // columns the block's own updates have since moved (as the published code does).
            let blockStart = Array(wt[column * rows ..< end * rows])
            for i in column ..< end {
                if case .nOfM(let keep, let group)? = selection, i % group == 0 {
                    // The group's mask from its columns as they are now (earlier columns of the
                    // block have moved them).
                    for r in 0 ..< rows {
                        for j in Selection.lowest(group - keep, of: i ..< i + group, score: { pruningScore($0, r) }) { mask!.prune(r * columns + j) }
                    }
                }
                if grouped, let scheme {
                    if let staticGrids {
                        let group = order[i] / groupSize
                        current = staticGrids[group]
                        groupOfPosition[i] = Int32(group)
                    } else {
                        if i % groupSize == 0 {
                            // The grid of the next `groupSize` columns in processing order, from W
                            // as the block began (the published algorithm's choice).
                            current = try positionGrids(rows: rows, first: i, count: min(groupSize, columns - i), scheme: scheme) { position, r in
                                position < end ? blockStart[(position - column) * rows + r] : wt[position * rows + r]
                            }
                            let group = i / groupSize
                            for r in 0 ..< rows {
                                scales[r * ((columns + groupSize - 1) / groupSize) + group] = current[r].scale
                                zeros[r * ((columns + groupSize - 1) / groupSize) + group] = current[r].zero
                            }
                        }
                        groupOfPosition[i] = Int32(i / groupSize)
                    }
                }
                let d = hinv[i * columns + i]
                let original = order[i]
                try wt.withUnsafeMutableBufferPointer { wp in
                    try errors.withUnsafeMutableBufferPointer { ep in
                        let col = wp.baseAddress! + i * rows
                        let err = ep.baseAddress! + (i - column) * rows
                        for r in 0 ..< rows {
                            let pruned = mask?.isKept(r * columns + original) == false
                            let q: Float
                            if scheme != nil {
                                let grid = current[r]
                                let code = pruned ? zeroCodes(grid) : grid.code(col[r])
                                codes[r * columns + original] = code
                                q = pruned ? 0 : grid.value(code)
                            } else {
                                q = pruned ? 0 : col[r]
                                values[r * columns + original] = q
                            }
                            let e = (col[r] - q) / d
                            err[r] = e
                            guard e.isFinite else { throw EngineError("GPTQ: the update became \(e); the Hessian is too ill-conditioned") }
                        }
                        // Spread this column's error over the rest of the block.
                        for j in i + 1 ..< end {
                            let factor = hinv[i * columns + j]
                            if factor == 0 { continue }
                            let target = wp.baseAddress! + j * rows
                            for r in 0 ..< rows { target[r] -= err[r] * factor }
                        }
                    }
                }
            }
            // The block's errors onto every later column at once: Wt[end:] -= Hinv[col:end, end:]ᵀ · E.
            if end < columns {
                hinv.withUnsafeBufferPointer { hp in
                    errors.withUnsafeBufferPointer { ep in
                        wt.withUnsafeMutableBufferPointer { wp in
                            GEMM.sgemm(
                                transA: true, transB: false, m: columns - end, n: rows, k: end - column, alpha: -1,
                                a: hp.baseAddress! + column * columns + end, lda: columns, b: ep.baseAddress!, ldb: rows,
                                beta: 1, c: wp.baseAddress! + end * rows, ldc: rows)
                        }
                    }
                }
            }
            column = end
        }
        if let staticGrids {
            for (group, rowGrids) in staticGrids.enumerated() {
                for r in 0 ..< rows {
                    scales[r * staticGrids.count + group] = rowGrids[r].scale
                    zeros[r * staticGrids.count + group] = rowGrids[r].zero
                }
            }
        }
        // Without static groups, act-order groups follow the processing order: the group of
        // each original column is recorded (GPTQ's g_idx).
        var groupIndex: [Int32]?
        if grouped && options.actOrder && staticGrids == nil {
            var index = [Int32](repeating: 0, count: columns)
            for i in 0 ..< columns { index[order[i]] = groupOfPosition[i] }
            groupIndex = index
        }
        guard let scheme else { return Solution(packed: nil, values: values, mask: mask, damp: damp) }
        let zero: PackedWeight.ZeroPoint = scheme.symmetric ? .constant(zeros[0]) : .perGroup(zeros)
        let packed = try PackedWeight(
            rows: rows, columns: columns, bits: scheme.bits, granularity: scheme.granularity,
            codes: PackedWeight.pack(codes, rows: rows, columns: columns, bits: scheme.bits), scales: scales,
            scaleType: scheme.scaleType, zero: zero, groupIndex: groupIndex)
        return Solution(packed: packed, values: nil, mask: mask, damp: damp)
    }

    /// The row grids of the groups of W's original columns (static groups), or of one group.
    static func grids(
        _ w: [Float], rows: Int, columns: Int, first: Int, groupSize: Int, scheme: QuantizationScheme, allGroups: Bool
    ) throws -> [[GroupGrid]] {
        let groups = allGroups ? (columns + groupSize - 1) / groupSize : 1
        return try (0 ..< groups).map { group in
            let start = allGroups ? group * groupSize : first
            let stop = min(columns, start + groupSize)
            return try (0 ..< rows).map { r in
                try w.withUnsafeBufferPointer { try GroupGrid.fit(UnsafeBufferPointer(rebasing: $0[r * columns + start ..< r * columns + stop]), scheme) }
            }
        }
    }

    /// The row grids of `count` consecutive columns in processing order, whose values `value`
    /// gives by (position, row).
    static func positionGrids(
        rows: Int, first: Int, count: Int, scheme: QuantizationScheme, _ value: (Int, Int) -> Float
    ) throws -> [GroupGrid] {
        var row = [Float](repeating: 0, count: count)
        return try (0 ..< rows).map { r in
            for i in 0 ..< count { row[i] = value(first + i, r) }
            return try row.withUnsafeBufferPointer { try GroupGrid.fit($0, scheme) }
        }
    }
}
