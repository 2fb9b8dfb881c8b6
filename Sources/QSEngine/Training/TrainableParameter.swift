import Foundation

/// The grid of a quantized layer for quantization-aware training: the scales, zero points and
/// group layout of its packed form. The forward pass uses fake-quantized weights
/// (`dequantize(quantize(w))` on this grid); the backward passes the gradient straight through
/// to the fp32 master weights where the code was not clamped (the straight-through estimator),
/// and gives the scales the learned-step-size gradient (LSQ).
package struct FakeQuantGrid: Sendable {
    package let rows: Int
    package let columns: Int
    package let bits: Int
    package let granularity: PackedWeight.Granularity
    package let groupIndex: [Int32]?
    package var scales: [Float]
    package let scaleType: DType
    package let zero: PackedWeight.ZeroPoint

    /// The grid of `packed`; nil for a float8 form (its codes are not an integer grid).
    package init?(_ packed: PackedWeight) {
        guard packed.codeFormat == .integer else { return nil }
        rows = packed.rows
        columns = packed.columns
        bits = packed.bits
        granularity = packed.granularity
        groupIndex = packed.groupIndex
        scales = packed.scales
        scaleType = packed.scaleType
        zero = packed.zero
    }

    private var groupSize: Int {
        switch granularity {
        case .tensor, .channel: columns
        case .group(let size): size
        }
    }

    private var groupsPerRow: Int {
        if case .group(let size) = granularity { return (columns + size - 1) / size }
        return 1
    }

    @inline(__always)
    private func scaleIndex(row: Int, column: Int) -> Int {
        let group = groupIndex.map { Int($0[column]) } ?? column / groupSize
        switch granularity {
        case .tensor: return 0
        case .channel: return row
        case .group: return row * groupsPerRow + group
        }
    }

    private var top: Float { Float((1 << bits) - 1) }

    /// The code of w in scale index `index` (clamped), and whether it was clamped.
    @inline(__always)
    private func code(_ w: Float, index: Int) -> (code: Float, clamped: Bool) {
        let s = scales[index]
        guard s != 0 else { return (zeroCode(index), false) }
        let raw: Float
        switch zero {
        case .constant(let z): raw = (w / s + z).rounded()
        case .perGroup(let zeros): raw = (w / s + zeros[index]).rounded()
        case .offset(let offsets): raw = ((w - offsets[index]) / s).rounded()
        }
        if raw < 0 { return (0, true) }
        if raw > top { return (top, true) }
        return (raw, false)
    }

    @inline(__always)
    private func value(_ code: Float, index: Int) -> Float {
        switch zero {
        case .constant(let z): scales[index] * (code - z)
        case .perGroup(let zeros): scales[index] * (code - zeros[index])
        case .offset(let offsets): scales[index] * code + offsets[index]
        }
    }

    /// The code that decodes to zero (for a pruned weight): the zero point, rounded.
    @inline(__always)
    private func zeroCode(_ index: Int) -> Float {
        switch zero {
        case .constant(let z): min(top, max(0, z.rounded()))
        case .perGroup(let zeros): zeros[index]
        case .offset: 0
        }
    }

    /// Fake-quantized values of `master` (out×in) into `effective`, with one flag per element
    /// set where the code was clamped.
    package func fakeQuantize(_ master: [Float], into effective: inout [Float], clamped: inout [Bool]) {
        let size = groupIndex == nil ? groupSize : 1
        master.withUnsafeBufferPointer { w in
            effective.withUnsafeMutableBufferPointer { e in
                clamped.withUnsafeMutableBufferPointer { k in
                    for r in 0 ..< rows {
                        var first = 0
                        while first < columns {
                            let last = min(columns, first + size)
                            let index = scaleIndex(row: r, column: first)
                            for c in first ..< last {
                                let i = r * columns + c
                                let (q, clip) = code(w[i], index: index)
                                e[i] = value(q, index: index)
                                k[i] = clip
                            }
                            first = last
                        }
                    }
                }
            }
        }
    }

    /// Where `master` is not on the codes of `packed`, its dequantized values; elsewhere
    /// `continuous` (the values the codes were rounded from): the start of quantization-aware
    /// training, on exactly the packed codes and off the grid points wherever it can be.
    package func startingValues(continuous: [Float], dequantized: [Float]) -> [Float] {
        var out = dequantized
        for r in 0 ..< rows {
            for c in 0 ..< columns {
                let i = r * columns + c
                let index = scaleIndex(row: r, column: c)
                if value(code(continuous[i], index: index).code, index: index) == dequantized[i] { out[i] = continuous[i] }
            }
        }
        return out
    }

    /// The codes of `master` on this grid, one per element (pruned elements on the zero code).
    package func codes(_ master: [Float], mask: PruningMask?) -> [Float] {
        var out = [Float](repeating: 0, count: rows * columns)
        for r in 0 ..< rows {
            for c in 0 ..< columns {
                let i = r * columns + c
                let index = scaleIndex(row: r, column: c)
                out[i] = mask.map { !$0.isKept(i) } ?? false ? zeroCode(index) : code(master[i], index: index).code
            }
        }
        return out
    }

    /// The values of fixed `codes` with the current scales.
    package func decode(_ codes: [Float], into effective: inout [Float]) {
        for r in 0 ..< rows {
            for c in 0 ..< columns {
                let i = r * columns + c
                effective[i] = value(codes[i], index: scaleIndex(row: r, column: c))
            }
        }
    }

    /// The scales' gradient with the codes fixed: ∂(s · (q − z))/∂s = q − z (q for an offset grid).
    package func scaleGradient(codes: [Float], effectiveGrad: [Float], into grad: inout [Float]) {
        for r in 0 ..< rows {
            for c in 0 ..< columns {
                let i = r * columns + c
                let index = scaleIndex(row: r, column: c)
                let derivative: Float
                switch zero {
                case .constant(let z): derivative = codes[i] - z
                case .perGroup(let zeros): derivative = codes[i] - zeros[index]
                case .offset: derivative = codes[i]
                }
                grad[index] += effectiveGrad[i] * derivative
            }
        }
    }

    /// The packed form of fixed `codes` with the current scales (rounded to their stored type).
    package func pack(codes: [Float]) throws -> PackedWeight {
        let scales = roundedScales
        return try PackedWeight(
            rows: rows, columns: columns, bits: bits, granularity: granularity,
            codes: PackedWeight.pack(codes.map { UInt8($0) }, rows: rows, columns: columns, bits: bits), scales: scales, scaleType: scaleType,
            zero: zero, groupIndex: groupIndex)
    }

    /// The scales as their stored type holds them.
    var roundedScales: [Float] {
        scales.map { s in
            switch scaleType {
            case .f16: return HalfConversion.f16ToFloat(HalfConversion.floatToF16(abs(s)))
            case .bf16: return HalfConversion.bf16ToFloat(HalfConversion.floatToBF16(abs(s)))
            default: return abs(s)
            }
        }
    }

    /// The learned-step-size gradient of the scales from the effective weights' gradient.
    package func scaleGradient(master: [Float], effectiveGrad: [Float], into grad: inout [Float]) {
        for r in 0 ..< rows {
            for c in 0 ..< columns {
                let i = r * columns + c
                let index = scaleIndex(row: r, column: c)
                let s = scales[index]
                guard s != 0 else { continue }
                let (q, clip) = code(master[i], index: index)
                // value = s · (q − z) (or s · q + m): ∂/∂s is (q − z) − w/s inside the range
                // (round passes its gradient straight through), (q − z) where clamped.
                let derivative: Float
                switch zero {
                case .constant(let z): derivative = clip ? q - z : q - z - master[i] / s
                case .perGroup(let zeros): derivative = clip ? q - zeros[index] : q - zeros[index] - master[i] / s
                case .offset(let offsets): derivative = clip ? q : q - (master[i] - offsets[index]) / s
                }
                grad[index] += effectiveGrad[i] * derivative
            }
        }
    }

    /// The packed form of `master` on this grid (scales rounded to their stored type), pruned
    /// elements on the zero code.
    package func pack(_ master: [Float], mask: PruningMask?) throws -> PackedWeight {
        var grid = self
        grid.scales = roundedScales
        var unpacked = [UInt8](repeating: 0, count: rows * columns)
        for r in 0 ..< rows {
            for c in 0 ..< columns {
                let i = r * columns + c
                let index = grid.scaleIndex(row: r, column: c)
                let q = mask.map { !$0.isKept(i) } ?? false ? grid.zeroCode(index) : grid.code(master[i], index: index).code
                unpacked[i] = UInt8(q)
            }
        }
        return try PackedWeight(
            rows: rows, columns: columns, bits: bits, granularity: granularity,
            codes: PackedWeight.pack(unpacked, rows: rows, columns: columns, bits: bits), scales: grid.scales, scaleType: scaleType,
            zero: zero, groupIndex: groupIndex)
    }
}

/// One tensor of a model being trained: its fp32 master values (a linear weight out×in), the
/// values the forward pass computes with (fake-quantized and masked), its gradient, and the
/// optimizer's state. A frozen parameter keeps only its values.
package final class TrainableParameter {
    package let name: String
    package let shape: [Int]
    package let layout: WeightLayout
    package var master: [Float]
    /// What the forward pass multiplies: `master` itself, or fake-quantized and masked.
    package private(set) var effective: [Float]
    package var grad: [Float]
    package let trainable: Bool
    package let mask: PruningMask?
    package var grid: FakeQuantGrid?
    /// Whether the grid's scales learn (learned step size).
    package let learnsScales: Bool
    /// Whether the values themselves learn (false when only the scales do).
    package let learnsValues: Bool
    package var scaleGrad: [Float]
    private var clamped: [Bool]
    /// With only the scales learning, the codes stay as they were: the forward decodes them.
    private var fixedCodes: [Float]?
    var moments: [Float] = []
    var squares: [Float] = []
    var scaleMoments: [Float] = []
    var scaleSquares: [Float] = []

    /// A parameter from a weight's current form. `values` and `scales` say what learns. For a
    /// quantized weight, `origin` (the values it was quantized from) gives the master values
    /// where rounding them gives the stored codes (see `FakeQuantGrid.startingValues`).
    package init(name: String, weight: Weight, learnsValues: Bool, learnsScales: Bool, origin: Weight? = nil) throws {
        self.name = name
        layout = weight.layout
        var values = try weight.floats()
        if weight.shape.count == 2, weight.layout == .inOut {
            values = Self.transpose(values, rows: weight.shape[0], columns: weight.shape[1])
            shape = [weight.shape[1], weight.shape[0]]
        } else {
            shape = weight.shape
        }
        mask = weight.mask
        if case .packed(let packed) = weight.form, let grid = FakeQuantGrid(packed) {
            self.grid = grid
            if learnsValues, let origin, origin.shape.count == 2, !origin.isQuantized {
                var continuous = try origin.floats()
                if origin.layout == .inOut { continuous = Self.transpose(continuous, rows: origin.shape[0], columns: origin.shape[1]) }
                if continuous.count == values.count {
                    values = grid.startingValues(continuous: continuous, dequantized: values)
                }
            }
        }
        master = values
        effective = values
        self.learnsScales = learnsScales && grid != nil
        self.learnsValues = learnsValues
        trainable = learnsValues || self.learnsScales
        grad = trainable ? [Float](repeating: 0, count: values.count) : []
        scaleGrad = self.learnsScales ? [Float](repeating: 0, count: grid!.scales.count) : []
        clamped = grid == nil ? [] : [Bool](repeating: false, count: values.count)
        if let grid, self.learnsScales, !learnsValues { fixedCodes = grid.codes(values, mask: weight.mask) }
        refresh()
    }

    static func transpose(_ values: [Float], rows: Int, columns: Int) -> [Float] {
        var out = [Float](repeating: 0, count: values.count)
        for r in 0 ..< rows {
            for c in 0 ..< columns { out[c * rows + r] = values[r * columns + c] }
        }
        return out
    }

    package var count: Int { master.count }

    /// Recomputes the effective values from the master values and the grid.
    package func refresh() {
        if let grid, let fixedCodes {
            grid.decode(fixedCodes, into: &effective)
        } else if let grid {
            grid.fakeQuantize(master, into: &effective, clamped: &clamped)
        } else {
            effective = master
        }
        if let mask { effective.withUnsafeMutableBufferPointer { mask.apply(to: $0.baseAddress!, first: 0, count: $0.count) } }
    }

    package func zeroGrad() {
        if !grad.isEmpty { grad.withUnsafeMutableBufferPointer { $0.update(repeating: 0) } }
        if !scaleGrad.isEmpty { scaleGrad.withUnsafeMutableBufferPointer { $0.update(repeating: 0) } }
    }

    /// Turns the gradient of the effective values (accumulated in `grad`) into the gradients of
    /// what learns: the straight-through estimator for the master values (zero where clamped or
    /// pruned), the learned-step-size gradient for the scales.
    package func finishGradient() {
        guard trainable else { return }
        if learnsScales, let grid {
            if let fixedCodes {
                grid.scaleGradient(codes: fixedCodes, effectiveGrad: grad, into: &scaleGrad)
            } else {
                grid.scaleGradient(master: master, effectiveGrad: grad, into: &scaleGrad)
            }
        }
        if !learnsValues {
            grad.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            return
        }
        if grid != nil { for i in 0 ..< grad.count where clamped[i] { grad[i] = 0 } }
        if let mask { grad.withUnsafeMutableBufferPointer { mask.apply(to: $0.baseAddress!, first: 0, count: $0.count) } }
    }

    /// The weight the trained values make: packed again on the grid, or dense fp32.
    package func weight() throws -> Weight {
        if let grid, let fixedCodes { return try Weight(packed: grid.pack(codes: fixedCodes), mask: mask) }
        if let grid { return try Weight(packed: grid.pack(master, mask: mask), mask: mask) }
        if shape.count == 2, layout == .inOut {
            return try Weight(dense: Self.transpose(master, rows: shape[0], columns: shape[1]), shape: [shape[1], shape[0]], layout: .inOut, mask: mask)
        }
        return try Weight(dense: master, shape: shape, layout: layout, mask: mask)
    }
}
