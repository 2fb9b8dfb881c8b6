/// How a linear weight is quantized: the bit width, the grid (symmetric or asymmetric), which
/// elements share a scale, and how the range is chosen.
package struct QuantizationScheme: Sendable, Equatable, CustomStringConvertible {
    /// How each group's range is chosen.
    package enum Clip: String, Sendable, Equatable, CaseIterable {
        /// The plain min-max grid of GPTQ and compressed-tensors.
        case none
        /// The shrink of the range that minimises the group's squared error (llama.cpp's K-quant
        /// search, AWQ's clip search); never worse than `none` in weight MSE.
        case mse
    }

    /// 1 to 8; 1 is binarisation: sign(w) times the group's mean |w|.
    package var bits: Int
    package var symmetric: Bool
    package var granularity: PackedWeight.Granularity
    package var clip: Clip
    /// The type scales are stored in (and rounded to before the codes are chosen).
    package var scaleType: DType

    package init(bits: Int, symmetric: Bool, granularity: PackedWeight.Granularity, clip: Clip = .none, scaleType: DType = .f16) {
        self.bits = bits
        self.symmetric = symmetric
        self.granularity = granularity
        self.clip = clip
        self.scaleType = scaleType
    }

    /// `int4 g128 sym`, `int8 channel asym`, `binary g64`.
    package var description: String {
        let width = bits == 1 ? "binary" : "int\(bits)"
        let shared: String
        switch granularity {
        case .tensor: shared = "tensor"
        case .channel: shared = "channel"
        case .group(let size): shared = "g\(size)"
        }
        return bits == 1 ? "\(width) \(shared)" : "\(width) \(shared) \(symmetric ? "sym" : "asym")"
    }

    /// Bytes a rows × columns weight takes on this grid as round-to-nearest packs it (codes,
    /// scales, and zero points for an asymmetric grid): `PackedWeight.byteCount` before any
    /// quantizing, to plan under a size.
    package func byteCount(rows: Int, columns: Int) -> Int {
        let scales: Int
        switch granularity {
        case .tensor: scales = 1
        case .channel: scales = rows
        case .group(let size): scales = rows * ((columns + size - 1) / size)
        }
        let zeros = symmetric || bits == 1 ? 0 : (scales * bits + 7) / 8
        return rows * ((columns * bits + 7) / 8) + scales * scaleType.bytesPerBlock + zeros
    }

    /// The largest code, 2^bits − 1.
    var topCode: Float { Float((1 << bits) - 1) }

    /// Columns a group spans in a row of `columns` (a whole row for `channel` and `tensor`).
    func groupSize(columns: Int) -> Int {
        if case .group(let size) = granularity { return size }
        return columns
    }
}
