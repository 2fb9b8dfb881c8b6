extension Dequantize {
    /// fp16 bit pattern to fp32, for all 65536 patterns: a load beats the software conversion
    /// on x86-64 without F16C. Built once, never freed.
    nonisolated(unsafe) static let halfTable: UnsafeMutablePointer<Float> = {
        let table = UnsafeMutablePointer<Float>.allocate(capacity: 1 << 16)
        for bits in 0 ..< (1 << 16) { table[bits] = HalfConversion.f16ToFloat(UInt16(bits)) }
        return table
    }()

    /// Converts `blocks` whole blocks at `source` into `blocks * dtype.blockSize` floats, on
    /// the calling thread.
    static func dequantizeBlocks(
        _ dtype: DType, from source: UnsafeRawPointer, blocks: Int, into destination: UnsafeMutablePointer<Float>
    ) {
        switch dtype {
        case .f32: plain(source, blocks, destination, Float.self) { $0 }
        case .f64: plain(source, blocks, destination, Double.self) { Float($0) }
        case .f16:
            let table = halfTable
            plain(source, blocks, destination, UInt16.self) { table[Int(UInt16(littleEndian: $0))] }
        case .bf16: plain(source, blocks, destination, UInt16.self) { HalfConversion.bf16ToFloat(UInt16(littleEndian: $0)) }
        case .i64: plain(source, blocks, destination, Int64.self) { Float(Int64(littleEndian: $0)) }
        case .i32: plain(source, blocks, destination, Int32.self) { Float(Int32(littleEndian: $0)) }
        case .i16: plain(source, blocks, destination, Int16.self) { Float(Int16(littleEndian: $0)) }
        case .i8: plain(source, blocks, destination, Int8.self) { Float($0) }
        case .f8_e4m3: plain(source, blocks, destination, UInt8.self) { Float8.e4m3Values[Int($0)] }
        case .u8: plain(source, blocks, destination, UInt8.self) { Float($0) }
        case .bool: plain(source, blocks, destination, UInt8.self) { $0 == 0 ? 0 : 1 }
        case .q4_0: q4_0(source, blocks, destination)
        case .q4_1: q4_1(source, blocks, destination)
        case .q5_0: q5_0(source, blocks, destination)
        case .q5_1: q5_1(source, blocks, destination)
        case .q8_0: q8_0(source, blocks, destination)
        case .q2_K: q2_K(source, blocks, destination)
        case .q3_K: q3_K(source, blocks, destination)
        case .q4_K: q4_K(source, blocks, destination)
        case .q5_K: q5_K(source, blocks, destination)
        case .q6_K: q6_K(source, blocks, destination)
        }
    }

    @inline(__always)
    private static func plain<T>(
        _ source: UnsafeRawPointer, _ count: Int, _ destination: UnsafeMutablePointer<Float>, _: T.Type,
        _ convert: (T) -> Float
    ) {
        let size = MemoryLayout<T>.size
        for index in 0 ..< count {
            destination[index] = convert(source.loadUnaligned(fromByteOffset: index * size, as: T.self))
        }
    }

    @inline(__always)
    private static func byte(_ pointer: UnsafeRawPointer, _ offset: Int) -> UInt8 {
        pointer.load(fromByteOffset: offset, as: UInt8.self)
    }

    @inline(__always)
    private static func half(_ pointer: UnsafeRawPointer, _ offset: Int) -> Float {
        halfTable[Int(UInt16(littleEndian: pointer.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))]
    }

    /// fp16 d; 16 bytes: element j in the low nibble of byte j, j+16 in the high; x = d (q - 8).
    private static func q4_0(_ source: UnsafeRawPointer, _ blocks: Int, _ out: UnsafeMutablePointer<Float>) {
        for block in 0 ..< blocks {
            let b = source + block * 18
            let o = out + block * 32
            let d = half(b, 0)
            for j in 0 ..< 16 {
                let q = byte(b, 2 + j)
                o[j] = d * Float(Int32(q & 0x0F) - 8)
                o[j + 16] = d * Float(Int32(q >> 4) - 8)
            }
        }
    }

    /// fp16 d, fp16 m; nibbles as Q4_0; x = d q + m.
    private static func q4_1(_ source: UnsafeRawPointer, _ blocks: Int, _ out: UnsafeMutablePointer<Float>) {
        for block in 0 ..< blocks {
            let b = source + block * 20
            let o = out + block * 32
            let d = half(b, 0)
            let m = half(b, 2)
            for j in 0 ..< 16 {
                let q = byte(b, 4 + j)
                o[j] = d * Float(q & 0x0F) + m
                o[j + 16] = d * Float(q >> 4) + m
            }
        }
    }

    /// fp16 d; u32 of fifth bits (bit i for element i); nibbles as Q4_0; x = d (q - 16).
    private static func q5_0(_ source: UnsafeRawPointer, _ blocks: Int, _ out: UnsafeMutablePointer<Float>) {
        for block in 0 ..< blocks {
            let b = source + block * 22
            let o = out + block * 32
            let d = half(b, 0)
            let high = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
            for j in 0 ..< 16 {
                let q = UInt32(byte(b, 6 + j))
                let low = (q & 0x0F) | ((high >> UInt32(j)) & 1) << 4
                let up = (q >> 4) | ((high >> UInt32(j + 16)) & 1) << 4
                o[j] = d * Float(Int32(low) - 16)
                o[j + 16] = d * Float(Int32(up) - 16)
            }
        }
    }

    /// fp16 d, fp16 m; fifth bits and nibbles as Q5_0; x = d q + m.
    private static func q5_1(_ source: UnsafeRawPointer, _ blocks: Int, _ out: UnsafeMutablePointer<Float>) {
        for block in 0 ..< blocks {
            let b = source + block * 24
            let o = out + block * 32
            let d = half(b, 0)
            let m = half(b, 2)
            let high = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            for j in 0 ..< 16 {
                let q = UInt32(byte(b, 8 + j))
                let low = (q & 0x0F) | ((high >> UInt32(j)) & 1) << 4
                let up = (q >> 4) | ((high >> UInt32(j + 16)) & 1) << 4
                o[j] = d * Float(low) + m
                o[j + 16] = d * Float(up) + m
            }
        }
    }

    /// fp16 d; 32 int8; x = q d.
    private static func q8_0(_ source: UnsafeRawPointer, _ blocks: Int, _ out: UnsafeMutablePointer<Float>) {
        for block in 0 ..< blocks {
            let b = source + block * 34
            let o = out + block * 32
            let d = half(b, 0)
            for j in 0 ..< 32 {
                o[j] = Float(Int8(bitPattern: byte(b, 2 + j))) * d
            }
        }
    }

    /// 16 scale bytes (low nibble scale, high nibble min, one per 16 elements); 64 bytes of
    /// 2-bit values (byte j of half h holds elements h*128 + 32s + j at bits 2s); fp16 d, dmin.
    /// x = (d sc) q - (dmin m).
    private static func q2_K(_ source: UnsafeRawPointer, _ blocks: Int, _ out: UnsafeMutablePointer<Float>) {
        for block in 0 ..< blocks {
            let b = source + block * 84
            let o = out + block * 256
            let d = half(b, 80)
            let dmin = half(b, 82)
            for group in 0 ..< 16 {
                let scale = byte(b, group)
                let dl = d * Float(scale & 0x0F)
                let ml = dmin * Float(scale >> 4)
                let h = group / 8
                let shift = UInt8((group % 8) / 2 * 2)
                let firstByte = 16 + h * 32 + (group % 2) * 16
                let g = o + group * 16
                for j in 0 ..< 16 {
                    let q = (byte(b, firstByte + j) >> shift) & 3
                    g[j] = dl * Float(q) - ml
                }
            }
        }
    }

    /// 32 bytes of high bits (bit k of byte j for element 32k + j, set meaning no offset);
    /// 64 bytes of low 2 bits (as Q2_K); 12 bytes of sixteen 6-bit scales; fp16 d.
    /// x = (d (sc - 32)) (low - 4 (1 - high)).
    private static func q3_K(_ source: UnsafeRawPointer, _ blocks: Int, _ out: UnsafeMutablePointer<Float>) {
        for block in 0 ..< blocks {
            let b = source + block * 110
            let o = out + block * 256
            let d = half(b, 108)
            for group in 0 ..< 16 {
                let lowScale = group < 8 ? byte(b, 96 + group) & 0x0F : byte(b, 96 + group - 8) >> 4
                let highScale = (byte(b, 104 + group % 4) >> UInt8(2 * (group / 4))) & 3
                let dl = d * Float(Int32(lowScale | highScale << 4) - 32)
                let h = group / 8
                let shift = UInt8((group % 8) / 2 * 2)
                let firstByte = 32 + h * 32 + (group % 2) * 16
                let maskBit = UInt8(group / 2)
                let maskByte = (group % 2) * 16
                let g = o + group * 16
                for j in 0 ..< 16 {
                    let low = Int32((byte(b, firstByte + j) >> shift) & 3)
                    let high = Int32(((byte(b, maskByte + j) >> maskBit) & 1) ^ 1)
                    g[j] = dl * Float(low - (high << 2))
                }
            }
        }
    }

    /// Eight 6-bit scales and mins packed in 12 bytes (Q4_K and Q5_K).
    @inline(__always)
    private static func scaleAndMin(_ scales: UnsafeRawPointer, _ j: Int) -> (UInt8, UInt8) {
        if j < 4 {
            return (byte(scales, j) & 0x3F, byte(scales, j + 4) & 0x3F)
        }
        let packed = byte(scales, j + 4)
        return (
            (packed & 0x0F) | ((byte(scales, j - 4) >> 2) & 0x30),
            (packed >> 4) | ((byte(scales, j) >> 2) & 0x30)
        )
    }

    /// fp16 d, fp16 dmin; 12 bytes of scales/mins; 128 bytes of nibbles (chunk c of 32 bytes
    /// holds sub-block 2c in low nibbles, 2c+1 in high). x = (d sc) q - (dmin m).
    private static func q4_K(_ source: UnsafeRawPointer, _ blocks: Int, _ out: UnsafeMutablePointer<Float>) {
        for block in 0 ..< blocks {
            let b = source + block * 144
            let o = out + block * 256
            let d = half(b, 0)
            let dmin = half(b, 2)
            for sub in 0 ..< 8 {
                let (scale, minimum) = scaleAndMin(b + 4, sub)
                let dl = d * Float(scale)
                let ml = dmin * Float(minimum)
                let shift = UInt8((sub % 2) * 4)
                let first = 16 + (sub / 2) * 32
                let g = o + sub * 32
                for j in 0 ..< 32 {
                    g[j] = dl * Float((byte(b, first + j) >> shift) & 0x0F) - ml
                }
            }
        }
    }

    /// As Q4_K with 32 bytes of fifth bits after the scales (bit s of byte j for sub-block s).
    private static func q5_K(_ source: UnsafeRawPointer, _ blocks: Int, _ out: UnsafeMutablePointer<Float>) {
        for block in 0 ..< blocks {
            let b = source + block * 176
            let o = out + block * 256
            let d = half(b, 0)
            let dmin = half(b, 2)
            for sub in 0 ..< 8 {
                let (scale, minimum) = scaleAndMin(b + 4, sub)
                let dl = d * Float(scale)
                let ml = dmin * Float(minimum)
                let shift = UInt8((sub % 2) * 4)
                let first = 48 + (sub / 2) * 32
                let bit = UInt8(sub)
                let g = o + sub * 32
                for j in 0 ..< 32 {
                    let q = ((byte(b, first + j) >> shift) & 0x0F) | ((byte(b, 16 + j) >> bit) & 1) << 4
                    g[j] = dl * Float(q) - ml
                }
            }
        }
    }

    /// 128 bytes of low nibbles (half h: byte j low nibble for element h*128 + j, high nibble
    /// for h*128 + 64 + j); 64 bytes of high 2 bits (half h: byte j bits 2s for element
    /// h*128 + 32s + j); 16 int8 scales; fp16 d. x = (d sc) (q - 32).
    private static func q6_K(_ source: UnsafeRawPointer, _ blocks: Int, _ out: UnsafeMutablePointer<Float>) {
        for block in 0 ..< blocks {
            let b = source + block * 210
            let o = out + block * 256
            let d = half(b, 208)
            for group in 0 ..< 16 {
                let dl = d * Float(Int8(bitPattern: byte(b, 192 + group)))
                let h = group / 8
                let within = (group % 8) * 16
                let lowByte = h * 64 + within % 64
                let lowShift = UInt8(within / 64 * 4)
                let highByte = 128 + h * 32 + within % 32
                let highShift = UInt8(within / 32 * 2)
                let g = o + group * 16
                for j in 0 ..< 16 {
                    let low = (byte(b, lowByte + j) >> lowShift) & 0x0F
                    let high = (byte(b, highByte + j) >> highShift) & 3
                    g[j] = dl * Float(Int32(low | high << 4) - 32)
                }
            }
        }
    }
}
