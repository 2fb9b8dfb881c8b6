/// Conversions between fp32 and the 16-bit float formats. F16 uses the standard library's
/// IEEE binary16 (round to nearest even, subnormals kept); BF16 is the top half of an fp32
/// with round-to-nearest-even on narrowing and NaNs kept quiet.
package enum HalfConversion {
    @inline(__always)
    package static func f16ToFloat(_ bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }

    @inline(__always)
    package static func floatToF16(_ value: Float) -> UInt16 { Float16(value).bitPattern }

    @inline(__always)
    package static func bf16ToFloat(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    @inline(__always)
    package static func floatToBF16(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        let roundingBias: UInt32 = 0x7FFF + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ roundingBias) >> 16)
    }
}
