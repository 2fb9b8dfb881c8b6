import Foundation

/// A tensor to be written into a GGUF file: its GGUF name, shape outermost first (written
/// contiguous-dimension first, as GGUF orders it), type, and a closure that fills exactly its
/// bytes when the writer reaches it, so one tensor's bytes exist at a time.
package struct GGUFTensorToWrite {
    package var name: String
    package var shape: [Int]
    package var type: GGMLType
    package var byteCount: Int
    package var write: (UnsafeMutableRawBufferPointer) throws -> Void

    package init(name: String, shape: [Int], type: GGMLType, write: @escaping (UnsafeMutableRawBufferPointer) throws -> Void) throws {
        guard let count = elementCount(shape), let last = shape.last, last % type.blockSize == 0 else {
            throw EngineError(subject: name, "shape \(shape) does not split into whole \(type.name) blocks of \(type.blockSize)")
        }
        self.name = name
        self.shape = shape
        self.type = type
        byteCount = count / type.blockSize * type.bytesPerBlock
        self.write = write
    }
}

/// Writes GGUF v3 files (gguf.md): header, metadata in the order given, tensor infos, and the
/// data section aligned to `general.alignment` (32), each tensor at an aligned offset. The file
/// is written under a temporary name and renamed only when complete.
package enum GGUFWriter {
    package static let alignment = 32

    /// Writes `metadata` and `tensors` to `path` atomically; `protecting` are files that must not
    /// be replaced (the loaded model's).
    package static func write(
        metadata: [GGUFKeyValue], tensors: [GGUFTensorToWrite], to path: String, protecting: [String] = [],
        progress: ((Int, Int) throws -> Void)? = nil
    ) throws {
        var seen: Set<String> = []
        for tensor in tensors where !seen.insert(tensor.name).inserted {
            throw EngineError(path: path, subject: tensor.name, "tensor name appears twice")
        }
        var header = Encoder()
        header.bytes.append(contentsOf: Array("GGUF".utf8))
        header.u32(3)
        header.u64(UInt64(tensors.count))
        header.u64(UInt64(metadata.count))
        for entry in metadata {
            header.string(entry.key)
            header.u32(entry.value.type.rawValue)
            header.value(entry.value)
        }
        var offset = 0
        var offsets: [Int] = []
        for tensor in tensors {
            header.string(tensor.name)
            header.u32(UInt32(tensor.shape.count))
            for dimension in tensor.shape.reversed() { header.u64(UInt64(dimension)) }
            header.u32(tensor.type.rawValue)
            header.u64(UInt64(offset))
            offsets.append(offset)
            offset += padded(tensor.byteCount)
        }
        header.bytes.append(contentsOf: repeatElement(0, count: padded(header.bytes.count) - header.bytes.count))
        try AtomicWrite.write(to: path, protecting: protecting) { file in
            try header.bytes.withUnsafeBytes { try file.write($0) }
            var buffer = UnsafeMutableRawBufferPointer(start: nil, count: 0)
            defer { buffer.deallocate() }
            for (index, tensor) in tensors.enumerated() {
                let size = padded(tensor.byteCount)
                if buffer.count < size {
                    buffer.deallocate()
                    buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
                }
                let region = UnsafeMutableRawBufferPointer(rebasing: buffer[0 ..< size])
                region.initializeMemory(as: UInt8.self, repeating: 0)
                do {
                    try tensor.write(UnsafeMutableRawBufferPointer(rebasing: region[0 ..< tensor.byteCount]))
                } catch var error as EngineError {
                    if error.subject == nil { error.subject = tensor.name }
                    throw error
                }
                try file.write(UnsafeRawBufferPointer(region))
                try progress?(index + 1, tensors.count)
            }
        }
    }

    private static func padded(_ count: Int) -> Int { (count + alignment - 1) / alignment * alignment }

    /// Little-endian encoding of GGUF header values.
    struct Encoder {
        var bytes: [UInt8] = []

        mutating func integer<T: FixedWidthInteger>(_ value: T) {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }

        mutating func u32(_ value: UInt32) { integer(value) }
        mutating func u64(_ value: UInt64) { integer(value) }

        mutating func string(_ text: String) {
            let utf8 = Array(text.utf8)
            u64(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }

        mutating func value(_ value: GGUFValue) {
            switch value {
            case .uint8(let v): integer(v)
            case .int8(let v): integer(v)
            case .uint16(let v): integer(v)
            case .int16(let v): integer(v)
            case .uint32(let v): integer(v)
            case .int32(let v): integer(v)
            case .float32(let v): integer(v.bitPattern)
            case .bool(let v): bytes.append(v ? 1 : 0)
            case .string(let v): string(v)
            case .uint64(let v): integer(v)
            case .int64(let v): integer(v)
            case .float64(let v): integer(v.bitPattern)
            case .array(let type, let items):
                u32(type.rawValue)
                u64(UInt64(items.count))
                for item in items { self.value(item) }
            }
        }
    }
}
