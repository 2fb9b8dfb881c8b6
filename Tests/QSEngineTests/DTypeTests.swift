import Testing
@testable import QSEngine

@Suite struct DTypeTests {
    @Test(arguments: [(DType.f32, 10, 40), (.q4_0, 64, 36), (.q6_K, 512, 420), (.bf16, 3, 6)])
    func byteCounts(dtype: DType, elements: Int, bytes: Int) {
        #expect(dtype.byteCount(elements: elements) == bytes)
    }

    @Test func partialBlockHasNoByteCount() {
        #expect(DType.q8_0.byteCount(elements: 33) == nil)
        #expect(DType.q4_K.byteCount(elements: 255) == nil)
    }

    @Test func overflowingShapeHasNoCount() {
        #expect(elementCount([Int.max, 2]) == nil)
        #expect(elementCount([-1, 4]) == nil)
        #expect(elementCount([3, 4, 5]) == 60)
    }

    @Test(arguments: [
        (Float(1.0), UInt16(0x3F80)), (1.00390625, 0x3F80), (1.01171875, 0x3F82),
        (-0.0, 0x8000), (Float.infinity, 0x7F80), (3.3895314e38, 0x7F80),
    ] as [(Float, UInt16)])
    func bf16RoundsToNearestEven(value: Float, bits: UInt16) {
        #expect(HalfConversion.floatToBF16(value) == bits)
    }

    @Test func bf16KeepsNaN() {
        let bits = HalfConversion.floatToBF16(Float.nan)
        #expect(HalfConversion.bf16ToFloat(bits).isNaN)
    }

    @Test(arguments: [
        (UInt16(0x0001), Float(5.9604645e-08)), (0x03FF, 6.097555e-05), (0x7C00, .infinity),
        (0xFBFF, -65504), (0x3C00, 1),
    ])
    func f16Widening(bits: UInt16, value: Float) {
        #expect(HalfConversion.f16ToFloat(bits) == value)
    }

    @Test func f16NarrowingRoundsToEvenAndOverflows() {
        #expect(HalfConversion.floatToF16(65520) == 0x7C00)  // halfway to the next binade: to infinity
        #expect(HalfConversion.floatToF16(65519) == 0x7BFF)
        #expect(HalfConversion.floatToF16(2.9802322e-08) == 0x0000)  // half the smallest subnormal: ties to even (0)
        #expect(HalfConversion.floatToF16(1 + 1.0 / 2048) == 0x3C00)  // tie between 1 and 1+2^-10: even
        #expect(HalfConversion.floatToF16(1 + 3.0 / 2048) == 0x3C02)
    }
}
