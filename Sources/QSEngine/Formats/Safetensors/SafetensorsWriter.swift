import Foundation

/// A tensor to be written: its description, and a closure that fills a buffer of exactly
/// `byteCount` bytes with its data (little-endian, row-major) when the writer reaches it, so
/// that only one tensor's bytes need to exist at a time.
package struct TensorToWrite {
    package var name: String
    package let dtype: DType
    package let shape: [Int]
    /// Bytes the data takes (elements × element size).
    package let byteCount: Int
    /// Fills the buffer (pre-zeroed, `byteCount` bytes) with the tensor's data.
    package var write: (UnsafeMutableRawBufferPointer) throws -> Void

    /// Throws when the dtype has no safetensors spelling or the shape's byte count overflows.
    package init(name: String, dtype: DType, shape: [Int], write: @escaping (UnsafeMutableRawBufferPointer) throws -> Void) throws {
        guard dtype.safetensorsName != nil else {
            throw EngineError(subject: name, "safetensors cannot store dtype \(dtype.rawValue); expected a plain type such as F32 or BF16")
        }
        guard let count = elementCount(shape), let bytes = dtype.byteCount(elements: count) else {
            throw EngineError(subject: name, "shape \(shape) of \(dtype.rawValue) overflows the byte count")
        }
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.byteCount = bytes
        self.write = write
    }

    /// A tensor whose bytes are copied unchanged from a stored tensor of a plain dtype.
    /// Throws for a tensor stored permuted (GGUF q/k projections), whose bytes need converting.
    package init(copying tensor: StoredTensor, name: String? = nil) throws {
        guard tensor.rotaryPermutationHeads == nil else {
            throw EngineError(
                path: tensor.file.path, subject: tensor.name, "is stored permuted for rotary embedding; its bytes cannot be copied as they are")
        }
        try self.init(name: name ?? tensor.name, dtype: tensor.dtype, shape: tensor.shape) { buffer in
            try tensor.withBytes { source in
                guard source.count == buffer.count else {
                    throw EngineError(
                        path: tensor.file.path, subject: tensor.name, "stored bytes (\(source.count)) do not match the shape (\(buffer.count))")
                }
                buffer.copyMemory(from: source)
            }
        }
    }
}

/// Writes safetensors checkpoints tensor by tensor (peak memory about the largest tensor),
/// atomically: every file goes to a temporary name in the destination folder, is flushed,
/// and is renamed only once all files are complete; on an error nothing new is left behind.
package enum SafetensorsWriter {
    /// The shard limit transformers uses by default (5 GB).
    package static let defaultMaxShardBytes = 5_000_000_000

    /// Writes `tensors` into `folder` (created if missing) as `model.safetensors`, or, when
    /// their data exceeds `maxShardBytes`, as `model-0000K-of-0000N.safetensors` shards plus
    /// `model.safetensors.index.json`. Stale checkpoint files of the other layout are removed,
    /// as transformers' `save_pretrained` does. Returns the paths written, index last.
    @discardableResult
    package static func write(
        _ tensors: [TensorToWrite], metadata: [String: String], toFolder folder: String,
        maxShardBytes: Int = defaultMaxShardBytes
    ) throws -> [String] {
        precondition(maxShardBytes > 0, "maxShardBytes must be positive")
        try checkNames(tensors, path: folder)
        var isDirectory: ObjCBool = false
        let folderExisted = FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory)
        if folderExisted && !isDirectory.boolValue { throw EngineError(path: folder, "exists and is not a folder") }
        if !folderExisted {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            } catch {
                throw EngineError(path: folder, "cannot create folder: \(error.localizedDescription)")
            }
        }
        do {
            return try writeShards(tensors, metadata: metadata, folder: folder, maxShardBytes: maxShardBytes)
        } catch {
            if !folderExisted { rmdir(folder) }
            throw error
        }
    }

    private static func writeShards(
        _ tensors: [TensorToWrite], metadata: [String: String], folder: String, maxShardBytes: Int
    ) throws -> [String] {
        var shards: [[Int]] = [[]]
        var shardBytes = 0
        for (index, tensor) in tensors.enumerated() {
            if !shards[shards.count - 1].isEmpty, tensor.byteCount > maxShardBytes - shardBytes {
                shards.append([])
                shardBytes = 0
            }
            shards[shards.count - 1].append(index)
            shardBytes += tensor.byteCount
        }

        let names: [String] =
            shards.count == 1
            ? [SafetensorsCheckpoint.singleFileName]
            : (1 ... shards.count).map { "model-\(fiveDigits($0))-of-\(fiveDigits(shards.count)).safetensors" }
        var pending: [PendingFile] = []
        let scratch = ScratchBuffer()
        for (shard, name) in zip(shards, names) {
            let file = try PendingFile(destination: (folder as NSString).appendingPathComponent(name))
            pending.append(file)
            try writeFile(shard.map { tensors[$0] }, metadata: metadata, into: file, scratch: scratch)
        }
        if shards.count > 1 {
            let file = try PendingFile(destination: (folder as NSString).appendingPathComponent(SafetensorsCheckpoint.indexFileName))
            pending.append(file)
            var weightMap: [StrictJSON.Member] = []
            for (shard, name) in zip(shards, names) {
                for index in shard { weightMap.append(StrictJSON.Member(tensors[index].name, .string(name))) }
            }
            weightMap.sort { $0.key < $1.key }
            let totalSize = tensors.reduce(0) { $0 + $1.byteCount }
            let index = StrictJSON.object([
                StrictJSON.Member("metadata", .object([StrictJSON.Member("total_size", .integer(totalSize))])),
                StrictJSON.Member("weight_map", .object(weightMap)),
            ])
            try file.write(index.serialized(indent: 2) + "\n")
        }
        try commit(pending, folder: folder)
        removeStaleFiles(in: folder, keeping: Set(pending.map { ($0.destination as NSString).lastPathComponent }))
        return pending.map(\.destination)
    }

    /// Writes one .safetensors file at `path` atomically.
    package static func writeFile(_ tensors: [TensorToWrite], metadata: [String: String], to path: String) throws {
        try checkNames(tensors, path: path)
        let file = try PendingFile(destination: path)
        let scratch = ScratchBuffer()
        try writeFile(tensors, metadata: metadata, into: file, scratch: scratch)
        try file.commit()
    }

    /// The header bytes (length prefix included) for tensors laid out in the given order.
    package static func header(for tensors: [TensorToWrite], metadata: [String: String]) -> [UInt8] {
        var members: [StrictJSON.Member] = []
        if !metadata.isEmpty {
            let entries = metadata.sorted { $0.key < $1.key }.map { StrictJSON.Member($0.key, .string($0.value)) }
            members.append(StrictJSON.Member("__metadata__", .object(entries)))
        }
        var offset = 0
        for tensor in tensors {
            let entry = StrictJSON.object([
                StrictJSON.Member("dtype", .string(tensor.dtype.safetensorsName ?? "")),
                StrictJSON.Member("shape", .array(tensor.shape.map { .integer($0) })),
                StrictJSON.Member("data_offsets", .array([.integer(offset), .integer(offset + tensor.byteCount)])),
            ])
            members.append(StrictJSON.Member(tensor.name, entry))
            offset += tensor.byteCount
        }
        var json = Array(StrictJSON.object(members).serialized().utf8)
        let padding = (8 - json.count % 8) % 8
        json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + json.count)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: json)
        return bytes
    }

    /// Orders tensors by element size, largest first (stable), as the `safetensors` package
    /// does, so every tensor starts at a multiple of its element size.
    static func layout(_ tensors: [TensorToWrite]) -> [TensorToWrite] {
        tensors.enumerated()
            .sorted { ($1.element.dtype.bytesPerBlock, $0.offset) < ($0.element.dtype.bytesPerBlock, $1.offset) }
            .map(\.element)
    }

    private static func writeFile(
        _ tensors: [TensorToWrite], metadata: [String: String], into file: PendingFile, scratch: ScratchBuffer
    ) throws {
        let ordered = layout(tensors)
        try header(for: ordered, metadata: metadata).withUnsafeBytes { try file.write($0) }
        for tensor in ordered {
            let buffer = scratch.zeroed(count: tensor.byteCount)
            do {
                try tensor.write(buffer)
            } catch var error as EngineError {
                if error.subject == nil { error.subject = tensor.name }
                throw error
            }
            try file.write(UnsafeRawBufferPointer(buffer))
        }
        try file.finish()
    }

    private static func checkNames(_ tensors: [TensorToWrite], path: String) throws {
        var seen: Set<String> = []
        for tensor in tensors {
            guard tensor.name != "__metadata__" else { throw EngineError(path: path, subject: tensor.name, "is reserved in safetensors headers") }
            guard seen.insert(tensor.name).inserted else { throw EngineError(path: path, subject: tensor.name, "tensor name appears twice") }
        }
    }

    /// Renames every finished file into place; if one fails, removes those already renamed.
    private static func commit(_ files: [PendingFile], folder: String) throws {
        var moved: [PendingFile] = []
        do {
            for file in files {
                try file.moveIntoPlace()
                moved.append(file)
            }
            try AtomicWrite.syncDirectory(folder)
        } catch {
            for file in moved { unlink(file.destination) }
            throw error
        }
    }

    private static func removeStaleFiles(in folder: String, keeping: Set<String>) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for name in names where !keeping.contains(name) && isCheckpointFileName(name) {
            try? FileManager.default.removeItem(atPath: (folder as NSString).appendingPathComponent(name))
        }
    }

    /// `model.safetensors`, its index, or a `model-0000K-of-0000N.safetensors` shard.
    static func isCheckpointFileName(_ name: String) -> Bool {
        if name == SafetensorsCheckpoint.singleFileName || name == SafetensorsCheckpoint.indexFileName { return true }
        let parts = name.split(separator: "-", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "model" && parts[2] == "of" && parts[3].hasSuffix(".safetensors")
            && parts[1].allSatisfy(\.isNumber) && parts[3].dropLast(".safetensors".count).allSatisfy(\.isNumber)
    }

    private static func fiveDigits(_ value: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, 5 - text.count)) + text
    }
}

/// A reusable, growing byte buffer: one allocation serves every tensor of a write.
private final class ScratchBuffer {
    private var storage = UnsafeMutableRawBufferPointer(start: nil, count: 0)

    deinit { storage.deallocate() }

    /// A zeroed region of `count` bytes, valid until the next call.
    func zeroed(count: Int) -> UnsafeMutableRawBufferPointer {
        if count == 0 { return UnsafeMutableRawBufferPointer(start: nil, count: 0) }
        if storage.count < count {
            storage.deallocate()
            storage = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 64)
        }
        let region = UnsafeMutableRawBufferPointer(rebasing: storage[0 ..< count])
        region.initializeMemory(as: UInt8.self, repeating: 0)
        return region
    }
}
