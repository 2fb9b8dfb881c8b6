import Foundation
import QSTestSupport
import Testing
@testable import QSEngine

/// The tiny GGUF mutated thousands of ways (fixed seed): every open, mapping and
/// dequantization must either throw an EngineError or give a consistent result.
@Suite struct GGUFFuzzTests {
    static let original: [UInt8] = (try? [UInt8](GGUFFixtures.data("tiny_llama.gguf"))) ?? []

    enum Outcome { case valid, rejected }

    /// Writes `bytes` to `path`, reads everything, and checks what came back.
    static func exercise(_ bytes: [UInt8], at path: String) throws -> Outcome {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        do {
            let file = try GGUFFile(path: path)
            for info in file.tensors {
                #expect(info.fileOffset >= file.dataOffset && info.fileOffset + info.byteCount <= bytes.count)
            }
            for tensor in try file.storedTensors() {
                let values = try Dequantize.floats(tensor)
                #expect(values.count == tensor.count)
            }
            _ = try? file.modelConfig()
            return .valid
        } catch is EngineError {
            return .rejected
        }
    }

    /// Where the length and count fields of the original file are: each metadata key's length
    /// and value type, its string value's length, its array's element type and count, or its
    /// 32/64-bit integer value, and each tensor name's length, rank, dimensions, type and offset.
    static func fieldOffsets() throws -> [(offset: Int, size: Int)] {
        let file = try GGUFFile(path: GGUFFixtures.tinyPath)
        var fields: [(Int, Int)] = [(8, 8), (16, 8)]
        func find(_ needle: [UInt8], from start: Int) -> Int? {
            guard needle.count <= original.count else { return nil }
            var index = start
            while index + needle.count <= original.count {
                if original[index] == needle[0], Array(original[index ..< index + needle.count]) == needle { return index }
                index += 1
            }
            return nil
        }
        var position = 24
        for entry in file.metadata {
            guard let keyStart = find(Array(entry.key.utf8), from: position) else { continue }
            fields.append((keyStart - 8, 8))
            let valueStart = keyStart + entry.key.utf8.count + 4
            fields.append((valueStart - 4, 4))
            switch entry.value {
            case .string: fields.append((valueStart, 8))
            case .array(let type, let elements):
                fields.append((valueStart, 4))
                fields.append((valueStart + 4, 8))
                if type == .string || type == .array, !elements.isEmpty { fields.append((valueStart + 12, 8)) }
            case .uint32, .int32: fields.append((valueStart, 4))
            case .uint64, .int64: fields.append((valueStart, 8))
            default: break
            }
            position = valueStart
        }
        for info in file.tensors {
            guard let nameStart = find(Array(info.name.utf8), from: position) else { continue }
            let rankAt = nameStart + info.name.utf8.count
            fields.append((nameStart - 8, 8))
            fields.append((rankAt, 4))
            for axis in info.dimensions.indices { fields.append((rankAt + 4 + 8 * axis, 8)) }
            let typeAt = rankAt + 4 + 8 * info.dimensions.count
            fields.append((typeAt, 4))
            fields.append((typeAt + 4, 8))
            position = typeAt + 12
        }
        return fields
    }

    @Test func originalIsValid() throws {
        let path = GGUFFixtures.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try Self.exercise(Self.original, at: path) == .valid)
    }

    @Test func truncatedAtEveryLength() throws {
        let path = GGUFFixtures.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let dataOffset = try GGUFFile(path: GGUFFixtures.tinyPath).dataOffset
        // Every length through the header; in the tensor data, every 7th (all fail alike there).
        let lengths = Array(0 ... dataOffset) + Array(stride(from: dataOffset + 1, to: Self.original.count, by: 7))
        for length in lengths {
            #expect(try Self.exercise(Array(Self.original.prefix(length)), at: path) == .rejected, "length \(length)")
        }
    }

    @Test func randomByteFlips() throws {
        let path = GGUFFixtures.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let headerEnd = try GGUFFile(path: GGUFFixtures.tinyPath).dataOffset
        var generator = TestGenerator(seed: 20261129)
        var outcomes: [Outcome: Int] = [:]
        for _ in 0 ..< 3000 {
            var bytes = Self.original
            let flips = Int.random(in: 1 ... 4, using: &generator)
            for _ in 0 ..< flips {
                // Mostly in the header, where parsing decisions are made.
                let limit = Bool.random(using: &generator) ? headerEnd : bytes.count
                let index = Int.random(in: 0 ..< limit, using: &generator)
                bytes[index] ^= UInt8.random(in: 1 ... 255, using: &generator)
            }
            outcomes[try Self.exercise(bytes, at: path), default: 0] += 1
        }
        #expect(outcomes[.rejected, default: 0] > 0)
        #expect(outcomes[.valid, default: 0] > 0)
    }

    @Test func hugeLengthsAndCounts() throws {
        let path = GGUFFixtures.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fields = try Self.fieldOffsets()
        #expect(fields.count > 100)
        let size = UInt64(Self.original.count)
        let values: [UInt64] = [
            .max, .max - 1, 1 << 63, UInt64(Int64.max), 1 << 62, 1 << 32, UInt64(UInt32.max), size, size - 1, size + 1,
            size / 2, 0, 1, 3, 13, 31, 33, 64, 255,
        ]
        var rejected = 0
        for (offset, width) in fields {
            for value in values {
                var bytes = Self.original
                for byte in 0 ..< width { bytes[offset + byte] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(byte))) }
                if try Self.exercise(bytes, at: path) == .rejected { rejected += 1 }
            }
        }
        #expect(rejected > fields.count)
    }
}
