import Foundation

/// A checkpoint stored as safetensors: one file, or a Hugging Face folder holding
/// `model.safetensors` or shards listed by `model.safetensors.index.json`.
package enum SafetensorsCheckpoint {
    package static let singleFileName = "model.safetensors"
    package static let indexFileName = "model.safetensors.index.json"

    /// Opens a .safetensors file, an index file, or a folder holding either (the single file
    /// wins when both are there, as in transformers). Tensors come shard by shard, each in
    /// file order, shards in name order; metadata is merged across shards (the first shard wins on a clash).
    package static func open(_ path: String) throws -> (tensors: [StoredTensor], metadata: [String: String]) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw EngineError(path: path, "does not exist")
        }
        if isDirectory.boolValue {
            let single = (path as NSString).appendingPathComponent(singleFileName)
            if FileManager.default.fileExists(atPath: single) { return try openSingle(single) }
            let index = (path as NSString).appendingPathComponent(indexFileName)
            if FileManager.default.fileExists(atPath: index) { return try openSharded(index: index) }
            throw EngineError(path: path, "folder has neither \(singleFileName) nor \(indexFileName)")
        }
        if path.hasSuffix(".index.json") { return try openSharded(index: path) }
        return try openSingle(path)
    }

    private static func openSingle(_ path: String) throws -> (tensors: [StoredTensor], metadata: [String: String]) {
        let file = try SafetensorsFile(path: path)
        return (file.tensors, file.metadata)
    }

    /// The tensor → shard map of an index file, with shard names in order of first mention.
    package static func readIndex(_ path: String) throws -> (weightMap: [(tensor: String, shard: String)], shards: [String]) {
        let data = try FileAccess.contents(path, expected: "an index file", limit: 256 << 20)
        let json: StrictJSON
        do {
            json = try data.withUnsafeBytes { (bytes) throws(StrictJSONError) -> StrictJSON in try StrictJSON.parse(bytes) }
        } catch {
            throw EngineError(path: path, "index is not valid JSON: \(error)")
        }
        guard json.members != nil else { throw EngineError(path: path, "index is \(json.typeName), expected a JSON object") }
        guard let weightMap = json["weight_map"] else { throw EngineError(path: path, subject: "weight_map", "index has no weight_map") }
        guard let entries = weightMap.members else {
            throw EngineError(path: path, subject: "weight_map", "is \(weightMap.typeName), expected an object of tensor name to shard file")
        }
        var map: [(tensor: String, shard: String)] = []
        var shards: [String] = []
        var seenShards: Set<String> = []
        for entry in entries {
            guard case .string(let shard) = entry.value else {
                throw EngineError(path: path, subject: entry.key, "weight_map entry is \(entry.value.typeName), expected a shard file name")
            }
            // A shard is a file of the index's own folder: no path that could lead outside it.
            guard !shard.isEmpty, shard != ".", shard != "..", !shard.contains("/"), !shard.contains("\\"), !shard.contains("\0") else {
                throw EngineError(path: path, subject: entry.key, "weight_map names shard '\(shard)', expected a file name in the same folder")
            }
            map.append((entry.key, shard))
            if seenShards.insert(shard).inserted { shards.append(shard) }
        }
        guard !map.isEmpty else { throw EngineError(path: path, subject: "weight_map", "index lists no tensors") }
        return (map, shards)
    }

    private static func openSharded(index path: String) throws -> (tensors: [StoredTensor], metadata: [String: String]) {
        let folder = (path as NSString).deletingLastPathComponent
        let (weightMap, mentioned) = try readIndex(path)
        let shards = mentioned.sorted()
        var files: [String: SafetensorsFile] = [:]
        for shard in shards {
            let shardPath = (folder as NSString).appendingPathComponent(shard)
            guard FileManager.default.fileExists(atPath: shardPath) else {
                throw EngineError(path: path, subject: shard, "index names shard '\(shard)', which is not in \(folder.isEmpty ? "." : folder)")
            }
            files[shard] = try SafetensorsFile(path: shardPath)
        }
        var owner: [String: String] = [:]
        var tensors: [StoredTensor] = []
        var metadata: [String: String] = [:]
        for shard in shards {
            guard let file = files[shard] else { continue }
            for tensor in file.tensors {
                if let first = owner[tensor.name] {
                    throw EngineError(path: file.path, subject: tensor.name, "tensor is in both '\(first)' and '\(shard)'")
                }
                owner[tensor.name] = shard
                tensors.append(tensor)
            }
            metadata.merge(file.metadata) { first, _ in first }
        }
        for (tensor, shard) in weightMap where owner[tensor] != shard {
            if let actual = owner[tensor] {
                throw EngineError(path: path, subject: tensor, "index puts the tensor in '\(shard)', but it is in '\(actual)'")
            }
            throw EngineError(path: path, subject: tensor, "index puts the tensor in '\(shard)', which does not contain it")
        }
        return (tensors, metadata)
    }
}
