/// How a linear layer's weight matrix lies in its tensor.
package enum WeightLayout: Sendable, Equatable {
    /// [out, in], as PyTorch stores an nn.Linear.
    case outIn
    /// [in, out], as GPT-2's Conv1D modules store it.
    case inOut
}

/// Factors a linear weight's values are multiplied by, per input feature and per output
/// feature: the smoothing AWQ and SmoothQuant fold into a layer (its input columns scaled by s
/// while the layer before divides by s), held beside a stored form and applied as it converts,
/// so smoothing costs no fp32 copy.
package struct ChannelScaling: Sendable, Equatable {
    package var input: [Float]?
    package var output: [Float]?

    package init(input: [Float]? = nil, output: [Float]? = nil) {
        self.input = input
        self.output = output
    }

    /// This scaling followed by `other` (factors multiply).
    func then(_ other: ChannelScaling) -> ChannelScaling {
        func combine(_ a: [Float]?, _ b: [Float]?) -> [Float]? {
            guard let a else { return b }
            guard let b else { return a }
            return zip(a, b).map { $0 * $1 }
        }
        return ChannelScaling(input: combine(input, other.input), output: combine(output, other.output))
    }
}

/// A tensor's values in one of the forms qs holds them, with an optional pruning mask:
///
/// - `stored`: the checkpoint's bytes in the mapped file, in the file's dtype (GGUF blocks
///   included); nothing is converted until a kernel needs it, and then only a tile at a time;
/// - `dense`: fp32 values (a compressed or trained replacement);
/// - `packed`: integer codes with scales and zero points (a quantized linear weight).
///
/// Bytes and bits per weight come from the form. Where a mask is set, the weight's values are
/// exactly zero at the pruned elements in every form: dense values and packed codes hold the
/// zeros, and a stored form has the mask applied as it is converted.
package struct Weight: Sendable {
    package enum Form: Sendable {
        case stored(StoredTensor)
        case dense([Float])
        case packed(PackedWeight)
    }

    package private(set) var form: Form
    /// Outermost dimension first, as the checkpoint shapes the tensor ([out, in] for a packed weight).
    package let shape: [Int]
    /// For a linear layer's weight, how its tensor holds the matrix. Packed weights are out×in.
    package let layout: WeightLayout
    package private(set) var mask: PruningMask?
    /// For a dense form, the type its values are exact in and would be saved as: f32, or f16 or
    /// bf16 after a cast. Bytes are counted at that size.
    package private(set) var denseType: DType = .f32
    /// For a stored form, factors applied to its values as they convert (smoothing).
    package private(set) var scaling: ChannelScaling?

    /// The checkpoint's tensor as stored.
    package init(stored tensor: StoredTensor, layout: WeightLayout = .outIn) {
        form = .stored(tensor)
        shape = tensor.shape
        self.layout = layout
    }

    /// fp32 values in the order of `shape`; pruned elements are set to zero.
    package init(dense values: [Float], shape: [Int], layout: WeightLayout = .outIn, mask: PruningMask? = nil) throws {
        guard let count = elementCount(shape), count == values.count else {
            throw EngineError("\(values.count) values do not fill the shape \(shape)")
        }
        if let mask, mask.count != count { throw EngineError("the mask covers \(mask.count) elements; the weight has \(count)") }
        var values = values
        if let mask { values.withUnsafeMutableBufferPointer { mask.apply(to: $0.baseAddress!, first: 0, count: count) } }
        form = .dense(values)
        self.shape = shape
        self.layout = layout
        self.mask = mask
    }

    /// `values` rounded to f16 or bf16 (a cast), held as fp32 for the kernels and counted at
    /// the cast type's size.
    package init(cast values: [Float], shape: [Int], layout: WeightLayout = .outIn, to dtype: DType, mask: PruningMask? = nil) throws {
        let rounded: [Float]
        switch dtype {
        case .f16: rounded = values.map { HalfConversion.f16ToFloat(HalfConversion.floatToF16($0)) }
        case .bf16: rounded = values.map { HalfConversion.bf16ToFloat(HalfConversion.floatToBF16($0)) }
        case .f32: rounded = values
        default: throw EngineError("a weight can be cast to f32, f16 or bf16, not \(dtype.rawValue)")
        }
        try self.init(dense: rounded, shape: shape, layout: layout, mask: mask)
        denseType = dtype
    }

    /// A quantized weight, [rows, columns] out×in. With a mask, every pruned element must decode
    /// to zero (the grid holds zero and the codes say so).
    package init(packed: PackedWeight, mask: PruningMask? = nil) throws {
        form = .packed(packed)
        shape = [packed.rows, packed.columns]
        layout = .outIn
        if let mask {
            guard mask.count == packed.rows * packed.columns else {
                throw EngineError("the mask covers \(mask.count) elements; the weight has \(packed.rows * packed.columns)")
            }
            var row = [Float](repeating: 0, count: packed.columns)
            for r in 0 ..< packed.rows {
                row.withUnsafeMutableBufferPointer { packed.dequantizeRows(r ..< r + 1, into: $0.baseAddress!) }
                for c in 0 ..< packed.columns where !mask.isKept(r * packed.columns + c) && row[c] != 0 {
                    throw EngineError("pruned element [\(r), \(c)] decodes to \(row[c]), not zero")
                }
            }
        }
        self.mask = mask
    }

    /// The number of elements.
    package var count: Int { shape.reduce(1, *) }

    /// Rows: the first dimension (elements of a 1-D tensor).
    package var rowCount: Int { count == 0 ? 0 : max(1, shape.first ?? 1) }

    /// Elements per row.
    package var rowLength: Int { rowCount == 0 ? 0 : count / rowCount }

    /// Output features of a linear weight.
    package var outFeatures: Int { layout == .outIn ? rowCount : rowLength }

    /// Input features of a linear weight.
    package var inFeatures: Int { layout == .outIn ? rowLength : rowCount }

    /// Bytes the form holds: the stored bytes, 4 per dense value, or codes, scales and zero points.
    package var byteCount: Int {
        switch form {
        case .stored(let tensor): tensor.byteCount
        case .dense(let values): values.count * denseType.bytesPerBlock
        case .packed(let packed): packed.byteCount
        }
    }

    /// Bits per element of the form.
    package var bitsPerWeight: Double { count == 0 ? 0 : Double(byteCount) * 8 / Double(count) }

    /// How the form is named in listings: the stored dtype, `f32` for dense values, or the
    /// quantization (`int4 g32 asym`).
    package var formName: String {
        switch form {
        case .stored(let tensor): return tensor.dtype.rawValue + (scaling == nil ? "" : " scaled")
        case .dense: return denseType.rawValue
        case .packed(let packed):
            if packed.codeFormat == .e4m3 { return packed.granularity == .channel ? "f8 e4m3 channel" : "f8 e4m3" }
            var name = "int\(packed.bits)"
            switch packed.granularity {
            case .tensor: name += " tensor"
            case .channel: name += " channel"
            case .group(let size): name += " g\(size)"
            }
            if case .constant = packed.zero {} else { name += " asym" }
            return name
        }
    }

    /// Whether the form is a quantization or a cast of other values (not the values themselves):
    /// a later quantization starts from the values as loaded instead.
    package var isQuantized: Bool {
        switch form {
        case .packed: true
        case .dense: denseType != .f32
        case .stored: false
        }
    }

    /// Whether the form is the checkpoint's own.
    package var isStored: Bool {
        if case .stored = form { return true }
        return false
    }

    /// Whether rows convert one range at a time (a stored row must be whole blocks of its dtype).
    package var convertsByRow: Bool {
        guard case .stored(let tensor) = form else { return true }
        return rowLength % tensor.dtype.blockSize == 0
    }

    /// Every value as fp32, in the order of `shape`.
    package func floats() throws -> [Float] {
        switch form {
        case .dense(let values):
            return values
        case .stored(let tensor):
            var values = try Dequantize.floats(tensor)
            values.withUnsafeMutableBufferPointer { applyScaling(to: $0.baseAddress!, rows: 0 ..< rowCount) }
            if let mask { values.withUnsafeMutableBufferPointer { mask.apply(to: $0.baseAddress!, first: 0, count: $0.count) } }
            return values
        case .packed(let packed):
            return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                packed.dequantizeRows(0 ..< packed.rows, into: buffer.baseAddress!)
                initialized = count
            }
        }
    }

    /// The first value that is NaN or infinite, with its index, for the forms a change makes
    /// (dense values; packed scales and offsets are checked when they are made). A stored form
    /// is the checkpoint's own and is not scanned.
    package func firstNonFinite() -> (index: Int, value: Float)? {
        guard case .dense(let values) = form, let index = values.firstIndex(where: { !$0.isFinite }) else { return nil }
        return (index, values[index])
    }

    /// Writes rows `range` (of the first dimension) as fp32 into `destination`,
    /// `range.count × rowLength` values. Throws for a stored form whose rows are not whole blocks
    /// (see `convertsByRow`).
    package func dequantizeRows(_ range: Range<Int>, into destination: UnsafeMutablePointer<Float>) throws {
        precondition(range.lowerBound >= 0 && range.upperBound <= rowCount, "Weight: rows \(range) outside 0..<\(rowCount)")
        let length = rowLength
        switch form {
        case .stored(let tensor):
            try Dequantize.rows(tensor, range, into: destination)
            applyScaling(to: destination, rows: range)
            mask?.apply(to: destination, first: range.lowerBound * length, count: range.count * length)
        case .dense(let values):
            values.withUnsafeBufferPointer {
                destination.update(from: $0.baseAddress! + range.lowerBound * length, count: range.count * length)
            }
        case .packed(let packed):
            packed.dequantizeRows(range, into: destination)
        }
    }

    /// Runs `body` on the values as fp32 in place, without a copy, when the form holds them so:
    /// dense values, or a stored f32 tensor (aligned, with no permutation or mask to apply).
    /// Returns nil, without calling `body`, otherwise.
    package func withContiguousFloats<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R? {
        switch form {
        case .dense(let values):
            return try values.withUnsafeBufferPointer(body)
        case .stored(let tensor):
            guard tensor.dtype == .f32, tensor.rotaryPermutationHeads == nil, mask == nil, scaling == nil,
                tensor.byteCount == count * 4, tensor.file.slice(offset: tensor.offset, length: tensor.byteCount) != nil
            else { return nil }
            return try tensor.withBytes { raw in
                guard let base = raw.baseAddress, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 else { return nil }
                return try body(UnsafeBufferPointer(start: base.assumingMemoryBound(to: Float.self), count: count))
            }
        case .packed:
            return nil
        }
    }

    /// Multiplies rows `rows` of the tensor (converted, `rows.count × rowLength` values) by the
    /// scaling's factors, in the tensor's layout.
    private func applyScaling(to values: UnsafeMutablePointer<Float>, rows: Range<Int>) {
        guard let scaling else { return }
        let length = rowLength
        let (rowFactors, columnFactors) = layout == .outIn ? (scaling.output, scaling.input) : (scaling.input, scaling.output)
        for (offset, row) in rows.enumerated() {
            let base = values + offset * length
            if let rowFactors {
                let f = rowFactors[row]
                for c in 0 ..< length { base[c] *= f }
            }
            if let columnFactors {
                for c in 0 ..< length { base[c] *= columnFactors[c] }
            }
        }
    }

    /// The same linear weight with its values multiplied by `scaling` (per input and per output
    /// feature): dense values are multiplied now, a stored form keeps the factors and applies
    /// them as it converts. A quantized form cannot be scaled (its codes would have to change).
    package func scaled(_ factors: ChannelScaling) throws -> Weight {
        guard shape.count == 2 else { throw EngineError("only a matrix can be scaled per channel; the weight has shape \(shape)") }
        if let input = factors.input, input.count != inFeatures {
            throw EngineError("\(input.count) input factors for a weight of \(inFeatures) inputs")
        }
        if let output = factors.output, output.count != outFeatures {
            throw EngineError("\(output.count) output factors for a weight of \(outFeatures) outputs")
        }
        var copy = self
        switch form {
        case .stored:
            copy.scaling = (scaling ?? ChannelScaling()).then(factors)
        case .dense(var values):
            guard denseType == .f32 else { throw EngineError("a weight cast to \(denseType.rawValue) cannot be scaled without rounding again") }
            copy.scaling = factors
            values.withUnsafeMutableBufferPointer { copy.applyScaling(to: $0.baseAddress!, rows: 0 ..< rowCount) }
            copy.scaling = nil
            copy.form = .dense(values)
        case .packed:
            throw EngineError("a quantized weight cannot be scaled; quantize it again from its values instead")
        }
        return copy
    }

    /// The same weight with a pruning mask: dense values are zeroed where it prunes, packed
    /// codes must already decode to zero there, and a stored form applies it as it converts.
    package func withMask(_ mask: PruningMask) throws -> Weight {
        guard mask.count == count else { throw EngineError("the mask covers \(mask.count) elements; the weight has \(count)") }
        switch form {
        case .stored:
            var copy = self
            copy.mask = mask
            return copy
        case .dense(var values):
            values.withUnsafeMutableBufferPointer { mask.apply(to: $0.baseAddress!, first: 0, count: $0.count) }
            var copy = self
            copy.form = .dense(values)
            copy.mask = mask
            return copy
        case .packed(let packed): return try Weight(packed: packed, mask: mask)
        }
    }
}
