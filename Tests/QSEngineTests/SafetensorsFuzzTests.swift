import Foundation
import QSTestSupport
import Testing

@testable import QSEngine

/// Thousands of damaged copies of a valid file (fixed seed): opening each must either throw an
/// EngineError or give tensors that are consistent and lie inside the file.
@Suite struct SafetensorsFuzzTests {
    /// Everything a successful open promises, checked against the raw file size; also touches
    /// every tensor byte so that an out-of-bounds range would fault here.
    static func checkValid(_ file: SafetensorsFile, raw: [UInt8]) {
        let size = raw.count
        #expect(file.dataOffset >= 8 && file.dataOffset <= size)
        var previousEnd = 0
        for tensor in file.tensors {
            let count = elementCount(tensor.shape)
            #expect(count != nil && tensor.dtype.byteCount(elements: count!) == tensor.byteCount)
            #expect(tensor.offset >= file.dataOffset && tensor.byteCount >= 0 && tensor.offset + tensor.byteCount <= size)
            if tensor.byteCount > 0 {
                #expect(tensor.offset >= previousEnd, "\(tensor.name) overlaps")
                previousEnd = tensor.offset + tensor.byteCount
            }
            if tensor.offset >= 0, tensor.byteCount >= 0, tensor.offset + tensor.byteCount <= size {
                #expect(tensor.withBytes { $0.elementsEqual(raw[tensor.offset ..< tensor.offset + tensor.byteCount]) })
            }
        }
    }

    /// Opens `bytes` as a file; fails the test on anything but success or an EngineError.
    static func open(_ bytes: [UInt8], at path: String, outcome: inout (accepted: Int, rejected: Int)) {
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let file = try SafetensorsFile(path: path)
            checkValid(file, raw: bytes)
            outcome.accepted += 1
        } catch let error as EngineError {
            #expect(error.path == path)
            outcome.rejected += 1
        } catch {
            Issue.record("unexpected error \(error) for \(bytes.count) bytes")
        }
    }

    /// The header of `bytes` as JSON members, and the data section.
    static func split(_ bytes: [UInt8]) throws -> ([StrictJSON.Member], [UInt8]) {
        let length = Int(bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian)
        let header = try StrictJSON.parse(Array(bytes[8 ..< 8 + length]))
        return (header.members ?? [], Array(bytes[(8 + length)...]))
    }

    static func join(_ members: [StrictJSON.Member], _ data: [UInt8]) -> [UInt8] {
        SafetensorsFixtures.file(header: StrictJSON.object(members).serialized(), data: data)
    }

    @Test func truncationAtEveryLength() throws {
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: SafetensorsFixtures.allDTypes)))
        let folder = try SafetensorsFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var outcome = (accepted: 0, rejected: 0)
        for length in 0 ..< original.count {
            Self.open(Array(original[..<length]), at: folder + "/t.safetensors", outcome: &outcome)
        }
        #expect(outcome.accepted == 0, "every truncation loses the last tensor's bytes")
        #expect(outcome.rejected == original.count)
    }

    @Test func randomBytesAndLengths() throws {
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: SafetensorsFixtures.allDTypes)))
        let headerEnd = 8 + Int(original.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian)
        let folder = try SafetensorsFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var random = TestGenerator(seed: 0x5AFE_7E45)
        var outcome = (accepted: 0, rejected: 0)
        for _ in 0 ..< 2000 {
            var bytes = original
            for _ in 0 ... random.below(4) {
                let at = random.below(headerEnd)
                bytes[at] = random.below(3) == 0 ? UInt8(truncatingIfNeeded: random.next()) : bytes[at] ^ (1 << UInt8(random.below(8)))
            }
            Self.open(bytes, at: folder + "/r.safetensors", outcome: &outcome)
        }
        let lengths: [UInt64] = [0, 1, 7, 8, UInt64(headerEnd - 9), UInt64(headerEnd - 7), UInt64(original.count - 8),
            UInt64(original.count), 100_000_000, 100_000_001, UInt64(Int.max), UInt64(Int.max) + 1, .max]
        for length in lengths + (0 ..< 300).map({ _ in random.next() >> UInt64(random.below(64)) }) {
            var bytes = original
            withUnsafeBytes(of: length.littleEndian) { bytes.replaceSubrange(0 ..< 8, with: $0) }
            Self.open(bytes, at: folder + "/l.safetensors", outcome: &outcome)
        }
        for _ in 0 ..< 300 {
            let garbage = random.bytes(random.below(64))
            Self.open(Array(original[..<8]) + garbage + Array(original[8...]), at: folder + "/g.safetensors", outcome: &outcome)
        }
        #expect(outcome.accepted > 0 && outcome.rejected > 0)
    }

    /// Structured damage: each mutation edits one tensor entry of the parsed header.
    @Test func offsetsDTypesAndShapesThatDisagree() throws {
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: SafetensorsFixtures.allDTypes)))
        let (members, data) = try Self.split(original)
        let tensorIndices = members.indices.filter { members[$0].key != "__metadata__" }
        let folder = try SafetensorsFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var random = TestGenerator(seed: 42)
        var outcome = (accepted: 0, rejected: 0)

        let dtypes: [StrictJSON] = DType.allCases.compactMap { $0.safetensorsName }.map { .string($0) }
            + [.string("F8_E5M2"), .string("f32"), .string(""), .integer(4), .null, .array([]), .object([])]
        func anyInteger() -> StrictJSON {
            let choices: [Int] = [0, 1, -1, 2, 7, 8, data.count, data.count + 1, Int(Int32.max), Int.max, Int.min, Int.max / 2]
            return .integer(random.below(4) == 0 ? Int(truncatingIfNeeded: random.next()) : choices[random.below(choices.count)])
        }
        func anyValue() -> StrictJSON {
            switch random.below(6) {
            case 0: anyInteger()
            case 1: .number(-1.5)
            case 2: .string("3")
            case 3: .array((0 ..< random.below(4)).map { _ in anyInteger() })
            case 4: .null
            default: .bool(true)
            }
        }

        for round in 0 ..< 3000 {
            var edited = members
            let index = tensorIndices[random.below(tensorIndices.count)]
            var entry = edited[index].value.members ?? []
            let field = ["dtype", "shape", "data_offsets", "data_offsets", "delete", "entry", "metadata"][random.below(7)]
            switch field {
            case "dtype":
                if let at = entry.firstIndex(where: { $0.key == "dtype" }) { entry[at].value = dtypes[random.below(dtypes.count)] }
            case "shape":
                if let at = entry.firstIndex(where: { $0.key == "shape" }) {
                    entry[at].value = random.below(2) == 0 ? .array((0 ..< random.below(5)).map { _ in anyInteger() }) : anyValue()
                }
            case "data_offsets":
                if let at = entry.firstIndex(where: { $0.key == "data_offsets" }) {
                    let other = tensorIndices[random.below(tensorIndices.count)]
                    let otherOffsets = edited[other].value["data_offsets"] ?? .null
                    switch random.below(4) {
                    case 0: entry[at].value = .array([anyInteger(), anyInteger()])
                    case 1: entry[at].value = otherOffsets
                    case 2:
                        if case .array(let pair) = otherOffsets, pair.count == 2, case .integer(let begin) = pair[0], case .integer(let end) = pair[1] {
                            let shift = random.below(9) - 4
                            entry[at].value = .array([.integer(begin + shift), .integer(end + shift)])
                        }
                    default: entry[at].value = anyValue()
                    }
                }
            case "delete":
                if !entry.isEmpty { entry.remove(at: random.below(entry.count)) }
            case "entry":
                edited[index].value = anyValue()
            default:
                let metadata = random.below(2) == 0 ? anyValue() : .object([StrictJSON.Member("k", anyValue())])
                edited.removeAll { $0.key == "__metadata__" }
                edited.insert(StrictJSON.Member("__metadata__", metadata), at: 0)
            }
            if field != "entry", case .object = edited[index].value { edited[index].value = .object(entry) }
            let shrink = round % 5 == 0 ? random.below(min(16, data.count)) : 0
            Self.open(Self.join(edited, Array(data.dropLast(shrink))), at: folder + "/s.safetensors", outcome: &outcome)
        }
        #expect(outcome.accepted > 0 && outcome.rejected > outcome.accepted)
    }
}
