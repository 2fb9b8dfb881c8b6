/// Quantization of a linear layer's inputs, simulated for evaluation: before the product the
/// input is rounded to a symmetric integer grid of `bits` bits (codes −(2^(b−1) − 1) … 2^(b−1) − 1)
/// and decoded again, so that evaluation measures what integer activations would cost.
package struct ActivationQuantization: Sendable, Equatable, CustomStringConvertible {
    /// Where the grid's scale comes from.
    package enum Mode: Sendable, Equatable {
        /// Each token's (row's) own max |x|, found as it runs (llm-compressor's W8A8 default).
        case token
        /// The whole input's max |x|, found as it runs.
        case tensor
        /// A scale fixed from the calibration set's max |x|.
        case `static`(scale: Float)
    }

    package var bits: Int
    package var mode: Mode

    package init(bits: Int, mode: Mode) {
        self.bits = bits
        self.mode = mode
    }

    /// The largest code, 2^(bits−1) − 1.
    var top: Float { Float((1 << (bits - 1)) - 1) }

    /// `a8 token`, `a8 tensor`, `a8 static`.
    package var description: String {
        switch mode {
        case .token: "a\(bits) token"
        case .tensor: "a\(bits) tensor"
        case .static: "a\(bits) static"
        }
    }

    /// The scale of a static grid from the largest |x| seen in calibration.
    package static func staticScale(maximum: Float, bits: Int) -> Float {
        let top = Float((1 << (bits - 1)) - 1)
        return maximum > 0 ? maximum / top : 1
    }

    /// `x` rounded to the grid and decoded (values beyond a static range clip to it).
    package func apply(_ x: Activations) -> Activations {
        var y = x
        let top = top
        let cols = x.cols
        func round(_ values: UnsafeMutableBufferPointer<Float>, range: Range<Int>, scale: Float) {
            guard scale > 0, scale.isFinite else { return }
            let inverse = 1 / scale
            for i in range { values[i] = min(top, max(-top, (values[i] * inverse).rounded())) * scale }
        }
        func largest(_ values: UnsafeMutableBufferPointer<Float>, _ range: Range<Int>) -> Float {
            var m: Float = 0
            for i in range { m = max(m, abs(values[i])) }
            return m
        }
        y.data.withUnsafeMutableBufferPointer { values in
            switch mode {
            case .token:
                for r in 0 ..< x.rows {
                    let range = r * cols ..< (r + 1) * cols
                    round(values, range: range, scale: largest(values, range) / top)
                }
            case .tensor:
                round(values, range: 0 ..< values.count, scale: largest(values, 0 ..< values.count) / top)
            case .static(let scale):
                round(values, range: 0 ..< values.count, scale: scale)
            }
        }
        return y
    }
}
