import Foundation
import Testing

@testable import QSEngine

/// Helpers shared by the safetensors test files.
enum SafetensorsFixtures {
    static var folder: String {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("safetensors").path
    }

    static var allDTypes: String { folder + "/all_dtypes.safetensors" }
    static var sharded: String { folder + "/sharded" }

    /// The `{name: {shape, values}}` listing the fixture script wrote next to a fixture.
    static func expected(_ name: String) throws -> [String: (shape: [Int], values: [StrictJSON])] {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: folder + "/" + name)))
        var result: [String: (shape: [Int], values: [StrictJSON])] = [:]
        for member in try StrictJSON.parse(bytes).members ?? [] {
            guard case .array(let dims)? = member.value["shape"], case .array(let values)? = member.value["values"] else {
                Issue.record("bad expectation for \(member.key)")
                continue
            }
            result[member.key] = (dims.map { if case .integer(let d) = $0 { d } else { -1 } }, values)
        }
        return result
    }

    /// The tensor's elements as JSON values: integers for integer and bool dtypes, numbers otherwise.
    static func decode(_ tensor: StoredTensor) -> [StrictJSON] {
        tensor.withBytes { decode(tensor, $0) }
    }

    private static func decode(_ tensor: StoredTensor, _ bytes: UnsafeRawBufferPointer) -> [StrictJSON] {
        let size = tensor.dtype.bytesPerBlock
        return (0 ..< tensor.count).map { index in
            let at = index * size
            switch tensor.dtype {
            case .f64: return .number(bytes.loadUnaligned(fromByteOffset: at, as: Double.self))
            case .f32: return .number(Double(bytes.loadUnaligned(fromByteOffset: at, as: Float.self)))
            case .f16: return .number(Double(HalfConversion.f16ToFloat(bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self))))
            case .bf16: return .number(Double(HalfConversion.bf16ToFloat(bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self))))
            case .i64: return .integer(Int(bytes.loadUnaligned(fromByteOffset: at, as: Int64.self)))
            case .i32: return .integer(Int(bytes.loadUnaligned(fromByteOffset: at, as: Int32.self)))
            case .i16: return .integer(Int(bytes.loadUnaligned(fromByteOffset: at, as: Int16.self)))
            case .i8: return .integer(Int(bytes.loadUnaligned(fromByteOffset: at, as: Int8.self)))
            case .u8: return .integer(Int(bytes[at]))
            case .bool: return .bool(bytes[at] != 0)
            default: return .null
            }
        }
    }

    /// Expected values normalised like `decode` (JSON writes 7.0 for a float and 7 for an int).
    static func normalised(_ values: [StrictJSON], dtype: DType) -> [StrictJSON] {
        values.map { value in
            if dtype.isFloatingPoint, case .integer(let number) = value { return .number(Double(number)) }
            return value
        }
    }

    /// A fresh empty folder under the temporary directory.
    static func temporaryFolder() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("qs-st-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Writes `bytes` to `path` and returns what opening it gives.
    static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// A safetensors file from a header given as JSON text and a data section.
    static func file(header: String, data: [UInt8], padTo alignment: Int = 8) -> [UInt8] {
        var json = Array(header.utf8)
        while json.count % alignment != 0 { json.append(UInt8(ascii: " ")) }
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { bytes.append(contentsOf: $0) }
        return bytes + json + data
    }
}

@Suite struct SafetensorsReaderTests {
    @Test func readsEveryDTypeWithItsValues() throws {
        let file = try SafetensorsFile(path: SafetensorsFixtures.allDTypes)
        let expected = try SafetensorsFixtures.expected("all_dtypes.json")
        #expect(Set(file.tensors.map(\.name)) == Set(expected.keys))
        // F8_E4M3 (FP8 checkpoints) is read too; PeerCheckpointTests reads llm-compressor's.
        #expect(Set(file.tensors.map(\.dtype)) == Set(DType.allCases.filter { $0.safetensorsName != nil && $0 != .f8_e4m3 }))
        for tensor in file.tensors {
            guard let want = expected[tensor.name] else { continue }
            #expect(tensor.shape == want.shape, "\(tensor.name)")
            #expect(SafetensorsFixtures.decode(tensor) == SafetensorsFixtures.normalised(want.values, dtype: tensor.dtype), "\(tensor.name)")
        }
        #expect(file.tensor(named: "k.scalar_f32")?.shape == [])
        #expect(file.tensor(named: "l.empty_f32")?.byteCount == 0)
    }

    @Test func keepsMetadataAndFileOrder() throws {
        let file = try SafetensorsFile(path: SafetensorsFixtures.allDTypes)
        #expect(file.metadata == ["format": "pt", "source": "qs fixtures", "note": "héllo \"quoted\""])
        let offsets = file.tensors.map(\.offset)
        #expect(offsets == offsets.sorted())
        #expect(file.tensors.first?.name == "e.i64")
        #expect(file.dataOffset % 8 == 0)
        #expect(file.tensors.allSatisfy { $0.offset >= file.dataOffset && $0.offset + $0.byteCount <= file.file.count })
    }

    @Test func readsShardedFolderAndIndexPath() throws {
        let expected = try SafetensorsFixtures.expected("sharded.json")
        for path in [SafetensorsFixtures.sharded, SafetensorsFixtures.sharded + "/model.safetensors.index.json"] {
            let checkpoint = try SafetensorsCheckpoint.open(path)
            #expect(checkpoint.tensors.count == expected.count)
            #expect(checkpoint.metadata == ["format": "pt"])
            for tensor in checkpoint.tensors {
                let want = try #require(expected[tensor.name])
                #expect(tensor.shape == want.shape)
                #expect(SafetensorsFixtures.decode(tensor) == SafetensorsFixtures.normalised(want.values, dtype: tensor.dtype))
            }
            let shards = checkpoint.tensors.map { ($0.file.path as NSString).lastPathComponent }
            #expect(shards == shards.sorted(), "shard by shard")
        }
    }

    @Test func opensSingleFileAndFolderWithModelSafetensors() throws {
        let folder = try SafetensorsFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.copyItem(atPath: SafetensorsFixtures.allDTypes, toPath: folder + "/model.safetensors")
        let fromFolder = try SafetensorsCheckpoint.open(folder)
        let fromFile = try SafetensorsCheckpoint.open(SafetensorsFixtures.allDTypes)
        #expect(fromFolder.tensors.map(\.name) == fromFile.tensors.map(\.name))
        #expect(fromFolder.metadata == fromFile.metadata)
    }

    @Test func emptyFolderIsAnError() throws {
        let folder = try SafetensorsFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let error = try #require(throws: EngineError.self) { try SafetensorsCheckpoint.open(folder) }
        #expect(error.message.contains("model.safetensors.index.json"))
    }

    /// Copies the sharded fixture into a temporary folder and edits the index.
    private func shardedCopy(editIndex: (inout String) -> Void) throws -> String {
        let folder = try SafetensorsFixtures.temporaryFolder()
        for name in try FileManager.default.contentsOfDirectory(atPath: SafetensorsFixtures.sharded) {
            try FileManager.default.copyItem(atPath: SafetensorsFixtures.sharded + "/" + name, toPath: folder + "/" + name)
        }
        let indexPath = folder + "/model.safetensors.index.json"
        var text = try String(contentsOfFile: indexPath, encoding: .utf8)
        editIndex(&text)
        try text.write(toFile: indexPath, atomically: true, encoding: .utf8)
        return folder
    }

    @Test func missingShardIsNamed() throws {
        let folder = try shardedCopy { $0 = $0.replacingOccurrences(of: "model-00002-of-00002", with: "model-00002-of-00003") }
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let error = try #require(throws: EngineError.self) { try SafetensorsCheckpoint.open(folder) }
        #expect(error.subject == "model-00002-of-00003.safetensors")
        #expect(error.message.contains("not in"))
    }

    @Test func indexedTensorMissingFromItsShardIsNamed() throws {
        let folder = try shardedCopy {
            $0 = $0.replacingOccurrences(of: "\"model.norm.weight\"", with: "\"model.norm.bias\": \"model-00002-of-00002.safetensors\",\n    \"model.norm.weight\"")
        }
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let error = try #require(throws: EngineError.self) { try SafetensorsCheckpoint.open(folder) }
        #expect(error.subject == "model.norm.bias")
        #expect(error.message.contains("does not contain it"))
    }

    @Test func tensorInTheWrongShardIsNamed() throws {
        let folder = try shardedCopy {
            $0 = $0.replacingOccurrences(
                of: "\"model.norm.weight\": \"model-00002-of-00002.safetensors\"",
                with: "\"model.norm.weight\": \"model-00001-of-00002.safetensors\"")
        }
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let error = try #require(throws: EngineError.self) { try SafetensorsCheckpoint.open(folder) }
        #expect(error.subject == "model.norm.weight")
        #expect(error.message.contains("but it is in 'model-00002-of-00002.safetensors'"))
    }

    @Test func duplicateTensorAcrossShardsIsAnError() throws {
        let folder = try SafetensorsFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let header = #"{"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#
        try SafetensorsFixtures.write(SafetensorsFixtures.file(header: header, data: [1, 2]), to: folder + "/a.safetensors")
        try SafetensorsFixtures.write(SafetensorsFixtures.file(header: header, data: [3, 4]), to: folder + "/b.safetensors")
        try #"{"weight_map": {"w": "a.safetensors", "x": "b.safetensors"}}"#.write(
            toFile: folder + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
        let error = try #require(throws: EngineError.self) { try SafetensorsCheckpoint.open(folder) }
        #expect(error.subject == "w")
        #expect(error.message.contains("in both 'a.safetensors' and 'b.safetensors'"))
    }

    @Test(arguments: [
        (#"{"weight_map": []}"#, "weight_map"),
        (#"{"metadata": {}}"#, "weight_map"),
        (#"{"weight_map": {"w": 3}}"#, "w"),
        (#"{"weight_map": {"w": "/etc/passwd"}}"#, "w"),
    ])
    func badIndexNamesTheKey(index: String, subject: String) throws {
        let folder = try SafetensorsFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try index.write(toFile: folder + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
        let error = try #require(throws: EngineError.self) { try SafetensorsCheckpoint.open(folder) }
        #expect(error.subject == subject)
    }

    /// Headers that must be rejected, the tensor the error names, and a phrase of the message.
    static let badHeaders: [(header: String, data: Int, subject: String?, phrase: String)] = [
        (#"{"w":{"dtype":"F8_E5M2","shape":[2],"data_offsets":[0,2]}}"#, 2, "w", "unknown dtype 'F8_E5M2'"),
        (#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, 8, "w", "span 4 bytes, but shape [2] of F32 needs 8"),
        (#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, 4, "w", "past the end of the data section (4 bytes)"),
        (#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, 8, "w", "end before they begin"),
        (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}"#, 8, "b", "overlap tensor 'a'"),
        (#"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, 8, "w", "overflows"),
        (#"{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, 8, "w", "not a non-negative integer"),
        (#"{"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#, 8, "w", "not a non-negative integer"),
        (#"{"w":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}"#, 8, "w", "'shape' is a string"),
        (#"{"w":{"dtype":32,"shape":[2],"data_offsets":[0,8]}}"#, 8, "w", "'dtype' is an integer"),
        (#"{"w":{"shape":[2],"data_offsets":[0,8]}}"#, 8, "w", "no 'dtype'"),
        (#"{"w":{"dtype":"F32","data_offsets":[0,8]}}"#, 8, "w", "no 'shape'"),
        (#"{"w":{"dtype":"F32","shape":[2]}}"#, 8, "w", "no 'data_offsets'"),
        (#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}}"#, 8, "w", "expected [begin, end]"),
        (#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}}"#, 8, "w", "expected [begin, end]"),
        (#"{"w":[1,2]}"#, 0, "w", "expected an object"),
        (#"{"__metadata__":{"k":1}}"#, 0, "__metadata__.k", "expected a string"),
        (#"{"__metadata__":[]}"#, 0, "__metadata__", "expected an object of strings"),
        (#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, 8, nil, "duplicate key \"w\""),
        (#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},}"#, 8, nil, "not valid JSON: invalid JSON at byte"),
        (#"["w"]"#, 0, nil, "does not start with a JSON object"),
    ]

    @Test(arguments: 0 ..< badHeaders.count)
    func badHeaderIsReportedWithFileAndTensor(case index: Int) throws {
        let bad = Self.badHeaders[index]
        let folder = try SafetensorsFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/bad.safetensors"
        try SafetensorsFixtures.write(SafetensorsFixtures.file(header: bad.header, data: [UInt8](repeating: 0, count: bad.data)), to: path)
        let error = try #require(throws: EngineError.self) { try SafetensorsFile(path: path) }
        #expect(error.path == path)
        #expect(error.subject == bad.subject)
        #expect(error.message.contains(bad.phrase), "\(error)")
    }

    @Test func headerLengthIsBounded() throws {
        let folder = try SafetensorsFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/bad.safetensors"
        for (length, phrase) in [(UInt64.max, "exceeds the limit"), (100_000_001, "exceeds the limit"), (64, "runs past the end")] {
            var bytes: [UInt8] = []
            withUnsafeBytes(of: length.littleEndian) { bytes.append(contentsOf: $0) }
            bytes += Array("{}      ".utf8)
            try SafetensorsFixtures.write(bytes, to: path)
            let error = try #require(throws: EngineError.self) { try SafetensorsFile(path: path) }
            #expect(error.message.contains(phrase), "\(error)")
        }
        try SafetensorsFixtures.write([1, 2, 3], to: path)
        let short = try #require(throws: EngineError.self) { try SafetensorsFile(path: path) }
        #expect(short.message.contains("too short"))
    }

    @Test func gapsAndEmptyTensorsAreAccepted() throws {
        let folder = try SafetensorsFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/ok.safetensors"
        let header = #"{"b":{"dtype":"U8","shape":[2],"data_offsets":[6,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[1,1]},"a":{"dtype":"I16","shape":[1],"data_offsets":[0,2]},"__metadata__":null}"#
        try SafetensorsFixtures.write(SafetensorsFixtures.file(header: header, data: [1, 0, 9, 9, 9, 9, 7, 8]), to: path)
        let file = try SafetensorsFile(path: path)
        #expect(file.tensors.map(\.name) == ["a", "e", "b"])
        #expect(file.tensors[2].withBytes { Array($0) } == [7, 8])
        #expect(file.metadata.isEmpty)
    }

    @Test func strictJSONKeepsIntegersExactAndOrder() throws {
        let json = try StrictJSON.parse(Array(#" {"b": [9007199254740993, -0, 1.5e3, "\u00e9\ud83d\ude00\n"], "a": null} "#.utf8))
        #expect(json.members?.map(\.key) == ["b", "a"])
        #expect(json["b"] == .array([.integer(9_007_199_254_740_993), .integer(0), .number(1500), .string("é😀\n")]))
        #expect(throws: StrictJSONError.self) { try StrictJSON.parse(Array(String(repeating: "[", count: 10_000).utf8)) }
        #expect(throws: StrictJSONError.self) { try StrictJSON.parse([0x22, 0xFF, 0x22]) }
        #expect(throws: StrictJSONError.self) { try StrictJSON.parse(Array("01".utf8)) }
        let text = #"{"k":["x\"\\\u0001",true,false,null,-2,0.25]}"#
        #expect(try StrictJSON.parse(Array(text.utf8)).serialized() == text)
    }
}
