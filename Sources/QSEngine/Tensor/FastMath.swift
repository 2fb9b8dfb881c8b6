import CQSKernels

/// Vectorised exp and max for the softmax and log-sum-exp hot loops. Foundation's scalar `exp`
/// took about a third of a SmolLM2 perplexity pass (25M calls per 512-token window for the
/// vocabulary alone); the C kernels run 16 lanes at a time with AVX-512, relative error below
/// 2e-7, and fall back to libm where the CPU lacks AVX-512.
package enum FastMath {
    /// Replaces values[i] with e^(values[i] - shift) and returns their sum.
    @inline(__always)
    package static func expShifted(_ values: UnsafeMutablePointer<Float>, count: Int, shift: Float) -> Double {
        qs_exp_shifted(values, count, shift)
    }

    /// Σ e^(values[i] - shift), values unchanged.
    @inline(__always)
    package static func sumExpShifted(_ values: UnsafePointer<Float>, count: Int, shift: Float) -> Double {
        qs_sum_exp_shifted(values, count, shift)
    }

    /// The largest of `count` values (-inf for none).
    @inline(__always)
    package static func maximum(_ values: UnsafePointer<Float>, count: Int) -> Float {
        qs_max(values, count)
    }

    /// e^x of one value through the vector kernel (for tests and odd spots).
    package static func exp(_ x: Float) -> Float {
        var value = x
        _ = qs_exp_shifted(&value, 1, 0)
        return value
    }
}

/// Process-wide memory settings.
package enum Memory {
    /// Keeps large freed buffers (a 49k-vocabulary model's logits are 100 MB a window) in the
    /// heap for reuse instead of mapping and zero-filling fresh pages each time.
    package static func keepLargeBuffers() { qs_keep_large_buffers() }

    /// Keeps every freed buffer of up to 32 MB in the heap, never returned to the system:
    /// training frees and allocates gigabytes of activations a step, and pages handed back
    /// would be zero-filled again on the next.
    package static func keepFreedMemory() { qs_keep_freed_memory() }
}
