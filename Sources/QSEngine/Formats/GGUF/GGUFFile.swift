/// Where one tensor lies in a GGUF file and how it is stored.
package struct GGUFTensorInfo: Sendable, Equatable {
    package var name: String
    /// GGUF order: the contiguous dimension first (a Hugging Face [out, in] weight is [in, out]).
    package var dimensions: [Int]
    package var type: GGMLType
    /// Byte offset from the start of the data section.
    package var offset: Int
    /// Byte offset from the start of the file.
    package var fileOffset: Int
    package var byteCount: Int

    /// The number of elements.
    package var elementCount: Int { dimensions.reduce(1, *) }

    /// PyTorch order: outermost dimension first.
    package var shape: [Int] { dimensions.reversed() }
}

/// A GGUF file (version 3, or 2): its metadata in file order, and where each tensor lies.
/// Opening it reads and checks the header only; tensor bytes stay in the mapped file.
package struct GGUFFile: Sendable {
    /// The magic bytes "GGUF", read as a little-endian u32.
    static let magic: UInt32 = 0x4655_4747
    static let defaultAlignment = 32
    static let maximumDimensions = 4

    package let file: MappedFile
    package let version: Int
    /// Metadata entries in the order the file lists them.
    package let metadata: [GGUFKeyValue]
    package let tensors: [GGUFTensorInfo]
    /// `general.alignment`, or 32 when the file does not set it.
    package let alignment: Int
    /// The byte offset of the data section, which tensor offsets count from.
    package let dataOffset: Int
    private let metadataIndex: [String: Int]
    private let tensorIndex: [String: Int]

    package var path: String { file.path }

    package init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    package init(file: MappedFile) throws {
        self.file = file
        var cursor = GGUFCursor(bytes: file.bytes, path: file.path)

        let magic = try cursor.integer(UInt32.self, "the magic \"GGUF\"", subject: nil)
        guard magic == Self.magic else {
            throw cursor.error(nil, "is not a GGUF file (expected the magic \"GGUF\" in the first 4 bytes)")
        }
        let version = try cursor.integer(UInt32.self, "the version", subject: nil)
        guard version == 2 || version == 3 else {
            if version.byteSwapped == 2 || version.byteSwapped == 3 {
                throw cursor.error(nil, "is a big-endian GGUF file; only little-endian files are supported")
            }
            throw cursor.error(nil, "has GGUF version \(version) (expected 3 or 2)")
        }
        self.version = Int(version)

        // A tensor info takes at least 32 bytes (name length, one dimension, type, offset) and
        // a metadata entry at least 13 (key length, type, one byte of value).
        let tensorCount = try cursor.count("tensor count", itemSize: 32, subject: nil)
        let metadataCount = try cursor.count("metadata entry count", itemSize: 13, subject: nil)

        var metadata: [GGUFKeyValue] = []
        var metadataIndex: [String: Int] = [:]
        metadata.reserveCapacity(metadataCount)
        for entry in 0 ..< metadataCount {
            let key = try cursor.string("the key of metadata entry \(entry)", subject: nil)
            guard metadataIndex[key] == nil else { throw cursor.error(key, "metadata key appears twice") }
            let type = try cursor.valueType("the value type", subject: key)
            let value = try cursor.value(of: type, key: key)
            metadataIndex[key] = metadata.count
            metadata.append(GGUFKeyValue(key: key, value: value))
        }
        self.metadata = metadata
        self.metadataIndex = metadataIndex

        var alignment = Self.defaultAlignment
        if let entry = metadataIndex["general.alignment"].map({ metadata[$0].value }) {
            guard let value = entry.int, value > 0, value & (value - 1) == 0, value <= 1 << 30 else {
                throw cursor.error("general.alignment", "must be a power of two integer, not \(entry)")
            }
            alignment = value
        }
        self.alignment = alignment

        var infos: [GGUFTensorInfo] = []
        var tensorIndex: [String: Int] = [:]
        infos.reserveCapacity(tensorCount)
        for number in 0 ..< tensorCount {
            let name = try cursor.string("the name of tensor \(number)", subject: nil)
            guard tensorIndex[name] == nil else { throw cursor.error(name, "tensor name appears twice") }
            let rank = try cursor.integer(UInt32.self, "the number of dimensions", subject: name)
            guard rank >= 1, rank <= Self.maximumDimensions else {
                throw cursor.error(name, "has \(rank) dimensions (expected 1 to \(Self.maximumDimensions))")
            }
            var dimensions: [Int] = []
            for axis in 0 ..< Int(rank) {
                let dimension = try cursor.integer(UInt64.self, "dimension \(axis)", subject: name)
                guard let value = Int(exactly: dimension) else {
                    throw cursor.error(name, "dimension \(axis) is \(dimension), too large")
                }
                dimensions.append(value)
            }
            let typeStart = cursor.position
            let rawType = try cursor.integer(UInt32.self, "the tensor type", subject: name)
            guard let type = GGMLType(rawValue: rawType) else {
                throw cursor.error(name, "unknown ggml type id \(rawType) at offset \(typeStart)")
            }
            let offset = try cursor.integer(UInt64.self, "the data offset", subject: name)
            guard let count = elementCount(dimensions) else {
                throw cursor.error(name, "dimensions \(dimensions) have more elements than can be addressed")
            }
            guard dimensions[0] % type.blockSize == 0 else {
                throw cursor.error(
                    name, "row length \(dimensions[0]) is not a multiple of the \(type.name) block size \(type.blockSize)")
            }
            let (byteCount, overflow) = (count / type.blockSize).multipliedReportingOverflow(by: type.bytesPerBlock)
            guard !overflow, let start = Int(exactly: offset) else {
                throw cursor.error(name, "data of \(dimensions) \(type.name) elements at offset \(offset) cannot be addressed")
            }
            guard start % alignment == 0 else {
                throw cursor.error(name, "data offset \(start) is not a multiple of the alignment \(alignment)")
            }
            tensorIndex[name] = infos.count
            infos.append(
                GGUFTensorInfo(
                    name: name, dimensions: dimensions, type: type, offset: start, fileOffset: 0, byteCount: byteCount))
        }

        let headerEnd = cursor.position
        var dataOffset = file.count
        if cursor.align(to: alignment) {
            dataOffset = cursor.position
        } else if !infos.isEmpty {
            throw cursor.error(
                nil, "file ends at byte \(file.count) before the data section (header ends at \(headerEnd), alignment \(alignment))")
        }
        self.dataOffset = dataOffset
        let dataSize = file.count - dataOffset
        for index in infos.indices {
            let info = infos[index]
            guard info.offset <= dataSize, info.byteCount <= dataSize - info.offset else {
                throw cursor.error(
                    info.name,
                    "data of \(info.byteCount) bytes at offset \(info.offset) runs past the end of the data section (\(dataSize) bytes)"
                )
            }
            infos[index].fileOffset = dataOffset + info.offset
        }
        let byOffset = infos.sorted { ($0.offset, $0.byteCount) < ($1.offset, $1.byteCount) }
        for (previous, next) in zip(byOffset, byOffset.dropFirst()) where previous.offset + previous.byteCount > next.offset {
            throw cursor.error(
                next.name,
                "data at offset \(next.offset) overlaps tensor '\(previous.name)' (bytes \(previous.offset) to \(previous.offset + previous.byteCount))"
            )
        }
        self.tensors = infos
        self.tensorIndex = tensorIndex
    }

    /// The value of a metadata key.
    package subscript(key: String) -> GGUFValue? {
        metadataIndex[key].map { metadata[$0].value }
    }

    /// The tensor with this GGUF name.
    package func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// `general.architecture`, when set to a string.
    package var architecture: String? { self["general.architecture"]?.string }
}
