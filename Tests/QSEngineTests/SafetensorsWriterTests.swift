import Foundation
import QSTestSupport
import Testing

@testable import QSEngine

extension TestGenerator {
    /// A number below `bound`.
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    /// `count` reproducible bytes.
    mutating func bytes(_ count: Int) -> [UInt8] { (0 ..< count).map { _ in UInt8(truncatingIfNeeded: next()) } }
}

@Suite struct SafetensorsWriterTests {
    /// Tensors of mixed dtypes with reproducible contents, and their bytes by name.
    static func sampleTensors(seed: UInt64 = 1) throws -> ([TensorToWrite], [String: [UInt8]]) {
        var random = TestGenerator(seed: seed)
        let specs: [(String, DType, [Int])] = [
            ("model.embed.weight", .f16, [7, 3]), ("model.norm.weight", .f32, [5]), ("flag", .bool, [3]),
            ("layer.0.q", .bf16, [4, 4]), ("counts", .i64, [2]), ("scalar", .f64, []), ("empty", .f32, [0, 3]),
            ("codes", .u8, [9]), ("layer.1.q", .i8, [3, 5]), ("ids", .i32, [3]), ("small", .i16, [5]),
        ]
        var expected: [String: [UInt8]] = [:]
        var tensors: [TensorToWrite] = []
        for (name, dtype, shape) in specs {
            let bytes = random.bytes(dtype.byteCount(elements: elementCount(shape)!)!)
            expected[name] = bytes
            tensors.append(try TensorToWrite(name: name, dtype: dtype, shape: shape) { $0.copyBytes(from: bytes) })
        }
        return (tensors, expected)
    }

    static func files(in folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
    }

    @Test func roundTripsOneFile() throws {
        let folder = try SafetensorsFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (tensors, expected) = try Self.sampleTensors()
        let written = try SafetensorsWriter.write(tensors, metadata: ["format": "pt", "q": "é\"x"], toFolder: folder)
        #expect(written == [folder + "/model.safetensors"])
        #expect(try Self.files(in: folder) == ["model.safetensors"])

        let file = try SafetensorsFile(path: folder + "/model.safetensors")
        #expect(file.metadata == ["format": "pt", "q": "é\"x"])
        #expect(file.dataOffset % 8 == 0, "header padded to 8 bytes")
        #expect(file.tensors.count == tensors.count)
        for tensor in file.tensors {
            let source = try #require(tensors.first { $0.name == tensor.name })
            #expect(tensor.dtype == source.dtype)
            #expect(tensor.shape == source.shape)
            #expect(tensor.withBytes { Array($0) } == expected[tensor.name])
            #expect(tensor.offset % tensor.dtype.bytesPerBlock == 0, "\(tensor.name) aligned")
        }
        let sizes = file.tensors.map(\.dtype.bytesPerBlock)
        #expect(sizes == sizes.sorted(by: >), "largest elements first")
        let end = file.tensors.map { $0.offset + $0.byteCount }.max()
        #expect(end == file.file.count, "no trailing bytes")
    }

    @Test func copiesAStoredFileByteForByte() throws {
        let folder = try SafetensorsFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let source = try SafetensorsFile(path: SafetensorsFixtures.allDTypes)
        try SafetensorsWriter.writeFile(
            source.tensors.map { try TensorToWrite(copying: $0) }, metadata: source.metadata, to: folder + "/copy.safetensors")
        let copy = try SafetensorsFile(path: folder + "/copy.safetensors")
        #expect(copy.metadata == source.metadata)
        #expect(Set(copy.tensors.map(\.name)) == Set(source.tensors.map(\.name)))
        for tensor in copy.tensors {
            let original = try #require(source.tensor(named: tensor.name))
            #expect(tensor.dtype == original.dtype && tensor.shape == original.shape)
            #expect(tensor.withBytes { Array($0) } == original.withBytes { Array($0) }, "\(tensor.name)")
        }
    }

    @Test func shardsPastTheLimitWithAnIndex() throws {
        let folder = try SafetensorsFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (tensors, expected) = try Self.sampleTensors()
        let written = try SafetensorsWriter.write(tensors, metadata: ["format": "pt"], toFolder: folder, maxShardBytes: 48)
        let names = try Self.files(in: folder)
        let shardCount = names.count - 1
        #expect(shardCount > 2)
        #expect(names.last == "model.safetensors.index.json")
        #expect(names.dropLast() == ArraySlice((1 ... shardCount).map { String(format: "model-%05d-of-%05d.safetensors", $0, shardCount) }))
        #expect(written.map { ($0 as NSString).lastPathComponent } == names)

        for name in names.dropLast() {
            let shard = try SafetensorsFile(path: folder + "/" + name)
            let bytes = shard.tensors.reduce(0) { $0 + $1.byteCount }
            #expect(bytes <= 48 || shard.tensors.count == 1, "\(name) holds \(bytes) bytes")
            #expect(shard.metadata == ["format": "pt"])
        }

        let index = try StrictJSON.parse([UInt8](Data(contentsOf: URL(fileURLWithPath: folder + "/model.safetensors.index.json"))))
        #expect(index["metadata"]?["total_size"] == .integer(expected.values.reduce(0) { $0 + $1.count }))
        let weightMap = try #require(index["weight_map"]?.members)
        #expect(Set(weightMap.map(\.key)) == Set(expected.keys))

        let checkpoint = try SafetensorsCheckpoint.open(folder)
        #expect(checkpoint.tensors.count == tensors.count)
        for tensor in checkpoint.tensors {
            #expect(tensor.withBytes { Array($0) } == expected[tensor.name], "\(tensor.name)")
            let shard = (tensor.file.path as NSString).lastPathComponent
            #expect(weightMap.first { $0.key == tensor.name }?.value == .string(shard))
        }
        let order = checkpoint.tensors.map(\.name)
        let callerOrder = tensors.map(\.name)
        #expect(order.first == callerOrder.first, "shards follow the caller's order")
    }

    @Test func aTensorLargerThanTheLimitGetsItsOwnShard() throws {
        let folder = try SafetensorsFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let big = try TensorToWrite(name: "big", dtype: .f32, shape: [100]) { $0.initializeMemory(as: UInt8.self, repeating: 1) }
        let small = try TensorToWrite(name: "small", dtype: .u8, shape: [4]) { $0.initializeMemory(as: UInt8.self, repeating: 2) }
        try SafetensorsWriter.write([small, big, small.renamed("small2")], metadata: [:], toFolder: folder, maxShardBytes: 16)
        #expect(try Self.files(in: folder).count == 4)
        let checkpoint = try SafetensorsCheckpoint.open(folder)
        #expect(checkpoint.tensors.map(\.name) == ["small", "big", "small2"])
        #expect(checkpoint.tensors[1].withBytes { $0.allSatisfy { $0 == 1 } })
    }

    @Test func rewritingReplacesTheOtherLayout() throws {
        let folder = try SafetensorsFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let (tensors, expected) = try Self.sampleTensors()
        try "keep".write(toFile: folder + "/tokenizer.json", atomically: true, encoding: .utf8)
        try SafetensorsWriter.write(tensors, metadata: [:], toFolder: folder, maxShardBytes: 40)
        try SafetensorsWriter.write(tensors, metadata: [:], toFolder: folder)
        #expect(try Self.files(in: folder) == ["model.safetensors", "tokenizer.json"])
        try SafetensorsWriter.write(tensors, metadata: [:], toFolder: folder, maxShardBytes: 100)
        #expect(try !Self.files(in: folder).contains("model.safetensors"))
        let checkpoint = try SafetensorsCheckpoint.open(folder)
        #expect(Dictionary(uniqueKeysWithValues: checkpoint.tensors.map { ($0.name, $0.withBytes { Array($0) }) }) == expected)
    }

    struct Failure: Error {}

    @Test(arguments: [Int.max, 40])
    func aFailingWriteLeavesNoFile(maxShardBytes: Int) throws {
        let parent = try SafetensorsFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        var (tensors, _) = try Self.sampleTensors()
        tensors[tensors.count - 2].write = { _ in throw EngineError("conversion failed") }

        let fresh = parent + "/fresh"
        let error = try #require(throws: EngineError.self) {
            try SafetensorsWriter.write(tensors, metadata: [:], toFolder: fresh, maxShardBytes: maxShardBytes)
        }
        #expect(error.subject == tensors[tensors.count - 2].name, "the error names the tensor")
        #expect(!FileManager.default.fileExists(atPath: fresh), "a folder the writer created is removed")

        let existing = parent + "/existing"
        let (good, expected) = try Self.sampleTensors(seed: 2)
        try SafetensorsWriter.write(good, metadata: [:], toFolder: existing)
        var failing = try Self.sampleTensors(seed: 3).0
        failing[failing.count - 1].write = { _ in throw Failure() }
        #expect(throws: Failure.self) {
            try SafetensorsWriter.write(failing, metadata: [:], toFolder: existing, maxShardBytes: maxShardBytes)
        }
        #expect(try Self.files(in: existing) == ["model.safetensors"], "no temporary or partial file")
        let kept = try SafetensorsFile(path: existing + "/model.safetensors")
        #expect(Dictionary(uniqueKeysWithValues: kept.tensors.map { ($0.name, $0.withBytes { Array($0) }) }) == expected)
    }

    @Test func rejectsWhatSafetensorsCannotHold() throws {
        #expect(throws: EngineError.self) { try TensorToWrite(name: "q", dtype: .q4_0, shape: [32]) { _ in } }
        #expect(throws: EngineError.self) { try TensorToWrite(name: "big", dtype: .f32, shape: [Int.max / 2, 4]) { _ in } }
        var permuted = try #require(try SafetensorsFile(path: SafetensorsFixtures.allDTypes).tensor(named: "b.f32"))
        permuted.rotaryPermutationHeads = 1
        #expect(throws: EngineError.self) { try TensorToWrite(copying: permuted) }
        let folder = try SafetensorsFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let a = try TensorToWrite(name: "a", dtype: .u8, shape: [1]) { _ in }
        let error = try #require(throws: EngineError.self) { try SafetensorsWriter.write([a, a], metadata: [:], toFolder: folder) }
        #expect(error.subject == "a")
        #expect(throws: EngineError.self) { try SafetensorsWriter.write([a.renamed("__metadata__")], metadata: [:], toFolder: folder) }
        #expect(try Self.files(in: folder).isEmpty)
    }

    @Test func headerMatchesThePythonLayout() throws {
        let a = try TensorToWrite(name: "a", dtype: .u8, shape: [3]) { _ in }
        let b = try TensorToWrite(name: "b", dtype: .f32, shape: [1, 2]) { _ in }
        let header = SafetensorsWriter.header(for: SafetensorsWriter.layout([a, b]), metadata: ["format": "pt"])
        let json = #"{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"a":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}}"#
        let padded = json + String(repeating: " ", count: (8 - json.utf8.count % 8) % 8)
        #expect(Array(header.dropFirst(8)) == Array(padded.utf8))
        #expect(header.prefix(8).elementsEqual(withUnsafeBytes(of: UInt64(padded.utf8.count).littleEndian) { Array($0) }))
    }
}

@Suite struct AtomicWriteTests {
    @Test func writesAndReplacesAFile() throws {
        let folder = try SafetensorsFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/config.json"
        try AtomicWrite.write(Data("one".utf8), to: path)
        try AtomicWrite.write(Data("two".utf8), to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "two")
        #expect(try SafetensorsWriterTests.files(in: folder) == ["config.json"])
    }

    @Test func aFailingStreamLeavesTheOldFile() throws {
        let folder = try SafetensorsFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/data.bin"
        try AtomicWrite.write(Data("old".utf8), to: path)
        #expect(throws: SafetensorsWriterTests.Failure.self) {
            try AtomicWrite.write(to: path) { file in
                try file.write("partial")
                throw SafetensorsWriterTests.Failure()
            }
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "old")
        #expect(try SafetensorsWriterTests.files(in: folder) == ["data.bin"])
        #expect(throws: EngineError.self) { try AtomicWrite.write(Data(), to: folder + "/missing/x") }
    }

    @Test func refusesToOverwriteASource() throws {
        let folder = try SafetensorsFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let model = folder + "/model"
        try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
        try AtomicWrite.write(Data("w".utf8), to: model + "/model.safetensors")
        let source = model + "/model.safetensors"
        for target in [source, model, folder, model + "/./model.safetensors"] {
            let error = try #require(throws: EngineError.self) { try AtomicWrite.write(Data(), to: target, protecting: [source]) }
            #expect(error.message.contains("refusing to overwrite"))
        }
        #expect(throws: EngineError.self) {
            try AtomicWrite.createFolder(at: model, overwrite: true, protecting: [model + "/"]) { _ in }
        }
        try AtomicWrite.write(Data("x".utf8), to: folder + "/other.json", protecting: [source])
        #expect(try String(contentsOfFile: source, encoding: .utf8) == "w")
    }

    @Test func createsAndReplacesAFolderAtomically() throws {
        let parent = try SafetensorsFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let out = parent + "/out"
        try AtomicWrite.createFolder(at: out) { temporary in
            #expect(temporary != out)
            #expect(!FileManager.default.fileExists(atPath: out))
            try AtomicWrite.write(Data("1".utf8), to: temporary + "/a")
        }
        #expect(try SafetensorsWriterTests.files(in: out) == ["a"])
        #expect(throws: EngineError.self) { try AtomicWrite.createFolder(at: out) { _ in } }

        #expect(throws: SafetensorsWriterTests.Failure.self) {
            try AtomicWrite.createFolder(at: out, overwrite: true) { temporary in
                try AtomicWrite.write(Data("2".utf8), to: temporary + "/b")
                throw SafetensorsWriterTests.Failure()
            }
        }
        #expect(try SafetensorsWriterTests.files(in: out) == ["a"], "old folder kept on failure")
        #expect(try SafetensorsWriterTests.files(in: parent) == ["out"], "temporary folder removed")

        // Overwriting replaces the files of the same names and keeps every other one.
        try AtomicWrite.write(Data("note".utf8), to: out + "/notes.txt")
        try AtomicWrite.createFolder(at: out, overwrite: true) { temporary in
            try AtomicWrite.write(Data("2".utf8), to: temporary + "/b")
            try AtomicWrite.write(Data("3".utf8), to: temporary + "/a")
        }
        #expect(try SafetensorsWriterTests.files(in: out) == ["a", "b", "notes.txt"])
        #expect(try String(contentsOfFile: out + "/a", encoding: .utf8) == "3")
        #expect(try String(contentsOfFile: out + "/notes.txt", encoding: .utf8) == "note")
        #expect(try SafetensorsWriterTests.files(in: parent) == ["out"])
    }
}

extension TensorToWrite {
    func renamed(_ name: String) -> TensorToWrite {
        var copy = self
        copy.name = name
        return copy
    }
}
