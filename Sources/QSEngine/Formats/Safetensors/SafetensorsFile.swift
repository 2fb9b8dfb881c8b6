/// One .safetensors file, mapped and validated: an 8-byte little-endian header length N,
/// N bytes of JSON describing each tensor (dtype, shape, data_offsets relative to the end of
/// the header) and an optional `__metadata__` string map, then the data. Tensor bytes stay
/// in the mapping.
package struct SafetensorsFile: Sendable {
    /// The largest header accepted, as in the `safetensors` package.
    package static let maximumHeaderLength = 100_000_000

    package let path: String
    package let file: MappedFile
    /// The tensors in file order (by data offset).
    package let tensors: [StoredTensor]
    /// The `__metadata__` map (empty when absent).
    package let metadata: [String: String]
    /// Where the data section starts (8 + header length).
    package let dataOffset: Int

    package init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    package init(file: MappedFile) throws {
        let path = file.path
        self.path = path
        self.file = file
        let size = file.count
        guard size >= 8, let lengthBytes = file.slice(offset: 0, length: 8) else {
            throw EngineError(path: path, "is too short for a safetensors file (\(size) bytes; the header length alone takes 8)")
        }
        let declared = lengthBytes.loadUnaligned(as: UInt64.self).littleEndian
        guard declared <= UInt64(Self.maximumHeaderLength) else {
            throw EngineError(path: path, "safetensors header length \(declared) exceeds the limit of \(Self.maximumHeaderLength) bytes")
        }
        let headerLength = Int(declared)
        guard headerLength <= size - 8, let header = file.slice(offset: 8, length: headerLength) else {
            throw EngineError(path: path, "safetensors header length \(headerLength) runs past the end of the file (\(size) bytes)")
        }
        guard headerLength >= 2, header[0] == UInt8(ascii: "{") else {
            throw EngineError(path: path, "safetensors header does not start with a JSON object")
        }
        let json: StrictJSON
        do {
            json = try StrictJSON.parse(header)
        } catch {
            throw EngineError(path: path, "safetensors header is not valid JSON: \(error)")
        }
        guard let members = json.members else {
            throw EngineError(path: path, "safetensors header is \(json.typeName), expected a JSON object")
        }
        dataOffset = 8 + headerLength
        let dataSize = size - dataOffset

        var metadata: [String: String] = [:]
        var entries: [(tensor: StoredTensor, begin: Int, end: Int)] = []
        entries.reserveCapacity(members.count)
        for member in members {
            if member.key == "__metadata__" {
                metadata = try Self.metadata(member.value, path: path)
                continue
            }
            let (tensor, begin, end) = try Self.tensor(
                named: member.key, entry: member.value, file: file, dataOffset: dataOffset, dataSize: dataSize)
            entries.append((tensor, begin, end))
        }
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var previous: (name: String, end: Int)?
        for entry in entries where entry.end > entry.begin {
            if let previous, entry.begin < previous.end {
                throw EngineError(
                    path: path, subject: entry.tensor.name,
                    "data_offsets [\(entry.begin), \(entry.end)] overlap tensor '\(previous.name)', which ends at \(previous.end)")
            }
            previous = (entry.tensor.name, entry.end)
        }
        self.metadata = metadata
        tensors = entries.map(\.tensor)
    }

    /// The tensor with this name, if the file has it.
    package func tensor(named name: String) -> StoredTensor? { tensors.first(where: { $0.name == name }) }

    private static func metadata(_ value: StrictJSON, path: String) throws -> [String: String] {
        if value == .null { return [:] }
        guard let members = value.members else {
            throw EngineError(path: path, subject: "__metadata__", "is \(value.typeName), expected an object of strings")
        }
        var metadata: [String: String] = [:]
        for member in members {
            guard case .string(let text) = member.value else {
                throw EngineError(path: path, subject: "__metadata__.\(member.key)", "is \(member.value.typeName), expected a string")
            }
            metadata[member.key] = text
        }
        return metadata
    }

    private static func tensor(
        named name: String, entry: StrictJSON, file: MappedFile, dataOffset: Int, dataSize: Int
    ) throws -> (StoredTensor, Int, Int) {
        let path = file.path
        func failure(_ message: String) -> EngineError { EngineError(path: path, subject: name, message) }
        guard entry.members != nil else { throw failure("tensor entry is \(entry.typeName), expected an object with dtype, shape and data_offsets") }

        guard let dtypeValue = entry["dtype"] else { throw failure("tensor entry has no 'dtype'") }
        guard case .string(let dtypeName) = dtypeValue else { throw failure("'dtype' is \(dtypeValue.typeName), expected a string") }
        guard let dtype = DType(safetensorsName: dtypeName) else {
            let known = DType.allCases.compactMap(\.safetensorsName).joined(separator: ", ")
            throw failure("unknown dtype '\(dtypeName)'; qs reads \(known)")
        }

        guard let shapeValue = entry["shape"] else { throw failure("tensor entry has no 'shape'") }
        guard case .array(let dims) = shapeValue else { throw failure("'shape' is \(shapeValue.typeName), expected an array of integers") }
        var shape: [Int] = []
        shape.reserveCapacity(dims.count)
        for dim in dims {
            guard case .integer(let value) = dim, value >= 0 else {
                throw failure("'shape' \(shapeValue.serialized()) has an entry that is not a non-negative integer")
            }
            shape.append(value)
        }
        guard let count = elementCount(shape), let byteCount = dtype.byteCount(elements: count) else {
            throw failure("shape \(shapeValue.serialized()) of \(dtypeName) overflows the byte count")
        }

        guard let offsetsValue = entry["data_offsets"] else { throw failure("tensor entry has no 'data_offsets'") }
        guard case .array(let offsets) = offsetsValue, offsets.count == 2,
            case .integer(let begin) = offsets[0], case .integer(let end) = offsets[1], begin >= 0, end >= 0
        else {
            throw failure("'data_offsets' is \(offsetsValue.serialized()), expected [begin, end] as two non-negative integers")
        }
        guard begin <= end else { throw failure("data_offsets [\(begin), \(end)] end before they begin") }
        guard end <= dataSize else {
            throw failure("data_offsets [\(begin), \(end)] run past the end of the data section (\(dataSize) bytes)")
        }
        guard end - begin == byteCount else {
            throw failure(
                "data_offsets [\(begin), \(end)] span \(end - begin) bytes, but shape \(shapeValue.serialized()) of \(dtypeName) needs \(byteCount)")
        }
        let tensor = StoredTensor(
            name: name, dtype: dtype, shape: shape, file: file, offset: dataOffset + begin, byteCount: byteCount)
        return (tensor, begin, end)
    }
}
