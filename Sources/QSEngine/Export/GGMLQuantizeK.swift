import Foundation

/// GGUF's 256-value super-block types, quantized the reference way (ggml-quants.c
/// `quantize_row_q4_K_ref`, `_q5_K_ref`, `_q6_K_ref`, without an importance matrix): per
/// 32-value (Q4_K, Q5_K) or 16-value (Q6_K) sub-block a scale (and a min) searched to lower
/// the weighted squared error, then the sub-block scales themselves quantized to 6 or 8 bits
/// against one f16 super-block scale. Written here for the same reason as `GGMLQuantize`.
extension GGMLQuantize {
    /// The super-block types qs quantizes to.
    package static let superBlockTypes: [DType] = [.q4_K, .q5_K, .q6_K]

    static func quantizeSuperBlocks(_ x: UnsafePointer<Float>, count: Int, as type: DType, into out: UnsafeMutableRawPointer) {
        precondition(count % 256 == 0, "GGMLQuantize: \(count) values are not whole super-blocks of 256")
        for block in 0 ..< count / 256 {
            let source = x + block * 256
            let y = out + block * type.bytesPerBlock
            switch type {
            case .q4_K: q4_K(source, y)
            case .q5_K: q5_K(source, y)
            case .q6_K: q6_K(source, y)
            default: preconditionFailure("GGMLQuantize: \(type.rawValue) is not a super-block type")
            }
        }
    }

    /// ggml's `nearest_int`: round half to even (exact for |v| < 2^22).
    @inline(__always)
    static func nearest(_ value: Float) -> Int { Int(value.rounded(.toNearestOrEven)) }

    /// The scale (and −min) of a sub-block on an asymmetric grid of `nmax + 1` levels, searched
    /// over `nstep + 1` stretches of the range (`make_qkx2_quants`, squared error).
    static func asymmetricGrid(
        _ x: UnsafePointer<Float>, _ n: Int, nmax: Int, weights: [Float], levels L: UnsafeMutablePointer<UInt8>,
        rmin: Float, rdelta: Float, nstep: Int
    ) -> (scale: Float, negatedMin: Float) {
        var low = x[0], high = x[0]
        var sumW = weights[0]
        var sumX = sumW * x[0]
        for i in 1 ..< n {
            if x[i] < low { low = x[i] }
            if x[i] > high { high = x[i] }
            let w = weights[i]
            sumW += w
            sumX += w * x[i]
        }
        if low > 0 { low = 0 }
        if high == low {
            for i in 0 ..< n { L[i] = 0 }
            return (0, -low)
        }
        let top = Float(nmax)
        var iscale = top / (high - low)
        var scale = 1 / iscale
        var bestError: Float = 0
        for i in 0 ..< n {
            L[i] = UInt8(max(0, min(nmax, nearest(iscale * (x[i] - low)))))
            let diff = scale * Float(L[i]) + low - x[i]
            bestError += weights[i] * (diff * diff)
        }
        var candidate = [UInt8](repeating: 0, count: n)
        for step in 0 ... nstep {
            iscale = (rmin + rdelta * Float(step) + top) / (high - low)
            var sumL: Float = 0, sumL2: Float = 0, sumXL: Float = 0
            for i in 0 ..< n {
                let l = max(0, min(nmax, nearest(iscale * (x[i] - low))))
                candidate[i] = UInt8(l)
                let w = weights[i]
                sumL += w * Float(l)
                sumL2 += w * Float(l) * Float(l)
                sumXL += w * Float(l) * x[i]
            }
            let determinant = sumW * sumL2 - sumL * sumL
            guard determinant > 0 else { continue }
            var thisScale = (sumW * sumXL - sumX * sumL) / determinant
            var thisMin = (sumL2 * sumX - sumL * sumXL) / determinant
            if thisMin > 0 {
                thisMin = 0
                thisScale = sumXL / sumL2
            }
            var error: Float = 0
            for i in 0 ..< n {
                let diff = thisScale * Float(candidate[i]) + thisMin - x[i]
                error += weights[i] * (diff * diff)
            }
            if error < bestError {
                for i in 0 ..< n { L[i] = candidate[i] }
                bestError = error
                scale = thisScale
                low = thisMin
            }
        }
        return (scale, -low)
    }

    /// The scale of a sub-block on a symmetric grid of 2·nmax levels, weighted by x², searched
    /// over 19 stretches (`make_qx_quants` with rmse_type 1); levels offset by nmax.
    static func symmetricGrid(_ x: UnsafePointer<Float>, _ n: Int, nmax: Int, levels L: UnsafeMutablePointer<Int8>) -> Float {
        var maximum: Float = 0, amax: Float = 0
        for i in 0 ..< n where abs(x[i]) > amax {
            amax = abs(x[i])
            maximum = x[i]
        }
        if amax < 1e-15 {
            for i in 0 ..< n { L[i] = 0 }
            return 0
        }
        var iscale = -Float(nmax) / maximum
        var sumLX: Float = 0, sumL2: Float = 0
        for i in 0 ..< n {
            let l = max(-nmax, min(nmax - 1, nearest(iscale * x[i])))
            L[i] = Int8(l + nmax)
            let w = x[i] * x[i]
            sumLX += w * x[i] * Float(l)
            sumL2 += w * Float(l) * Float(l)
        }
        var scale: Float = sumL2 != 0 ? sumLX / sumL2 : 0
        var best = scale * sumLX
        for step in -9 ... 9 where step != 0 {
            iscale = -(Float(nmax) + 0.1 * Float(step)) / maximum
            sumLX = 0
            sumL2 = 0
            for i in 0 ..< n {
                let l = max(-nmax, min(nmax - 1, nearest(iscale * x[i])))
                let w = x[i] * x[i]
                sumLX += w * x[i] * Float(l)
                sumL2 += w * Float(l) * Float(l)
            }
            if sumL2 > 0 && sumLX * sumLX > best * sumL2 {
                for i in 0 ..< n { L[i] = Int8(max(-nmax, min(nmax - 1, nearest(iscale * x[i]))) + nmax) }
                scale = sumLX / sumL2
                best = scale * sumLX
            }
        }
        return scale
    }

    /// Q4_K/Q5_K's 12 bytes of 6-bit sub-block scales and mins, and the levels recomputed
    /// against the stored scales. Returns the levels.
    private static func kScalesAndLevels(
        _ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, nmax: Int, rmin: Float, rdelta: Float, nstep: Int
    ) -> [UInt8] {
        var L = [UInt8](repeating: 0, count: 256)
        var scales = [Float](repeating: 0, count: 8)
        var mins = [Float](repeating: 0, count: 8)
        var maxScale: Float = 0, maxMin: Float = 0
        var weights = [Float](repeating: 0, count: 32)
        L.withUnsafeMutableBufferPointer { levels in
            for j in 0 ..< 8 {
                let sub = x + 32 * j
                var sumX2: Float = 0
                for l in 0 ..< 32 { sumX2 += sub[l] * sub[l] }
                let average = (sumX2 / 32).squareRoot()
                for l in 0 ..< 32 { weights[l] = average + abs(sub[l]) }
                let (scale, negatedMin) = asymmetricGrid(
                    sub, 32, nmax: nmax, weights: weights, levels: levels.baseAddress! + 32 * j, rmin: rmin, rdelta: rdelta, nstep: nstep)
                scales[j] = scale
                mins[j] = negatedMin
                if scale > maxScale { maxScale = scale }
                if negatedMin > maxMin { maxMin = negatedMin }
            }
        }
        let inverseScale: Float = maxScale > 0 ? 63 / maxScale : 0
        let inverseMin: Float = maxMin > 0 ? 63 / maxMin : 0
        let packed = (y + 4).assumingMemoryBound(to: UInt8.self)
        for j in 0 ..< 12 { packed[j] = 0 }
        var storedScale = [UInt8](repeating: 0, count: 8), storedMin = [UInt8](repeating: 0, count: 8)
        for j in 0 ..< 8 {
            let ls = min(63, UInt8(truncatingIfNeeded: nearest(inverseScale * scales[j])))
            let lm = min(63, UInt8(truncatingIfNeeded: nearest(inverseMin * mins[j])))
            storedScale[j] = ls
            storedMin[j] = lm
            if j < 4 {
                packed[j] = ls
                packed[j + 4] = lm
            } else {
                packed[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4)
                packed[j - 4] |= (ls >> 4) << 6
                packed[j] |= (lm >> 4) << 6
            }
        }
        let d = HalfConversion.floatToF16(maxScale / 63)
        let dmin = HalfConversion.floatToF16(maxMin / 63)
        y.storeBytes(of: d.littleEndian, as: UInt16.self)
        (y + 2).storeBytes(of: dmin.littleEndian, as: UInt16.self)
        let dValue = HalfConversion.f16ToFloat(d), dminValue = HalfConversion.f16ToFloat(dmin)
        for j in 0 ..< 8 {
            let scale = dValue * Float(storedScale[j])
            if scale == 0 { continue }
            let offset = dminValue * Float(storedMin[j])
            for i in 0 ..< 32 { L[32 * j + i] = UInt8(max(0, min(nmax, nearest((x[32 * j + i] + offset) / scale)))) }
        }
        return L
    }

    /// fp16 d, fp16 dmin, 12 bytes of 6-bit scales and mins, 128 bytes of nibbles.
    private static func q4_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        let L = kScalesAndLevels(x, y, nmax: 15, rmin: -1, rdelta: 0.1, nstep: 20)
        let q = (y + 16).assumingMemoryBound(to: UInt8.self)
        for (chunk, j) in stride(from: 0, to: 256, by: 64).enumerated() {
            for l in 0 ..< 32 { q[chunk * 32 + l] = L[j + l] | (L[j + l + 32] << 4) }
        }
    }

    /// fp16 d, fp16 dmin, 12 bytes of scales and mins, 32 bytes of fifth bits, 128 of nibbles.
    private static func q5_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        let L = kScalesAndLevels(x, y, nmax: 31, rmin: -0.5, rdelta: 0.1, nstep: 15)
        let qh = (y + 16).assumingMemoryBound(to: UInt8.self)
        let ql = (y + 48).assumingMemoryBound(to: UInt8.self)
        for j in 0 ..< 32 { qh[j] = 0 }
        var m1: UInt8 = 1, m2: UInt8 = 2
        for (chunk, n) in stride(from: 0, to: 256, by: 64).enumerated() {
            for j in 0 ..< 32 {
                var l1 = L[n + j], l2 = L[n + j + 32]
                if l1 > 15 { l1 -= 16; qh[j] |= m1 }
                if l2 > 15 { l2 -= 16; qh[j] |= m2 }
                ql[chunk * 32 + j] = l1 | (l2 << 4)
            }
            m1 <<= 2
            m2 <<= 2
        }
    }

    /// 128 bytes of low nibbles, 64 of high 2-bit pairs, 16 int8 sub-block scales, fp16 d.
    private static func q6_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var L = [Int8](repeating: 0, count: 256)
        var scales = [Float](repeating: 0, count: 16)
        var maxScale: Float = 0, maxAbsScale: Float = 0
        L.withUnsafeMutableBufferPointer { levels in
            for ib in 0 ..< 16 {
                let scale = symmetricGrid(x + 16 * ib, 16, nmax: 32, levels: levels.baseAddress! + 16 * ib)
                scales[ib] = scale
                if abs(scale) > maxAbsScale {
                    maxAbsScale = abs(scale)
                    maxScale = scale
                }
            }
        }
        let bytes = y.assumingMemoryBound(to: UInt8.self)
        if maxAbsScale < 1e-15 {
            for i in 0 ..< 210 { bytes[i] = 0 }
            return
        }
        let iscale = -128 / maxScale
        let d = HalfConversion.floatToF16(1 / iscale)
        (y + 208).storeBytes(of: d.littleEndian, as: UInt16.self)
        let stored = (y + 192).assumingMemoryBound(to: Int8.self)
        for ib in 0 ..< 16 { stored[ib] = Int8(min(127, nearest(iscale * scales[ib]))) }
        let dValue = HalfConversion.f16ToFloat(d)
        for j in 0 ..< 16 {
            let scale = dValue * Float(stored[j])
            if scale == 0 { continue }
            for i in 0 ..< 16 { L[16 * j + i] = Int8(max(-32, min(31, nearest(x[16 * j + i] / scale))) + 32) }
        }
        let ql = bytes, qh = bytes + 128
        for (chunk, j) in stride(from: 0, to: 256, by: 128).enumerated() {
            for l in 0 ..< 32 {
                let q1 = UInt8(L[j + l]), q2 = UInt8(L[j + l + 32]), q3 = UInt8(L[j + l + 64]), q4 = UInt8(L[j + l + 96])
                ql[chunk * 64 + l] = (q1 & 0xF) | ((q3 & 0xF) << 4)
                ql[chunk * 64 + l + 32] = (q2 & 0xF) | ((q4 & 0xF) << 4)
                qh[chunk * 32 + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6)
            }
        }
    }
}
