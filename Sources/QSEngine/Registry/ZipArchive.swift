import CZlib

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A zip file (a wheel) read through its central directory: stored and deflated entries,
/// zip64 sizes and offsets, CRC-32 checked. Links, devices and encrypted entries are refused.
struct ZipArchive {
    /// One entry of the central directory, checked for safety.
    struct Entry {
        var name: String
        var components: [Substring]
        var isDirectory: Bool
        var executable: Bool
        var method: UInt16
        var crc32: UInt32
        var compressedSize: Int
        var uncompressedSize: Int
        var localHeaderOffset: Int
    }

    let path: String
    private let file: MappedFile
    /// Every entry, in central directory order; all names already checked.
    let entries: [Entry]

    init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        entries = try Self.readDirectory(file.bytes, archive: path)
    }

    private static func corrupt(_ archive: String, _ what: String, entry: String? = nil) -> EngineError {
        EngineError(path: archive, subject: entry, "archive is corrupt: \(what)")
    }

    private static func readDirectory(_ bytes: UnsafeRawBufferPointer, archive: String) throws -> [Entry] {
        func u16(_ at: Int) -> Int { Int(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self))) }
        func u32(_ at: Int) -> Int { Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
        func u64(_ at: Int) -> Int? {
            let value = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self))
            return value <= UInt64(Int.max) ? Int(value) : nil
        }

        guard bytes.count >= 22 else { throw corrupt(archive, "too short to be a zip file") }
        var end = -1
        var at = bytes.count - 22
        let lowest = max(0, bytes.count - 22 - 0xFFFF)
        while at >= lowest {
            if u32(at) == 0x0605_4b50, at + 22 + u16(at + 20) <= bytes.count {
                end = at
                break
            }
            at -= 1
        }
        guard end >= 0 else { throw corrupt(archive, "no end of central directory record (not a zip file?)") }

        var count = u16(end + 10)
        var directorySize = u32(end + 12)
        var directoryOffset = u32(end + 16)
        if end >= 20, u32(end - 20) == 0x0706_4b50 {
            guard let recordOffset = u64(end - 12), recordOffset <= bytes.count - 56,
                u32(recordOffset) == 0x0606_4b50,
                let total = u64(recordOffset + 32), let size = u64(recordOffset + 40), let offset = u64(recordOffset + 48)
            else { throw corrupt(archive, "bad zip64 end of central directory") }
            count = total
            directorySize = size
            directoryOffset = offset
        }
        guard directoryOffset <= bytes.count, directorySize <= bytes.count - directoryOffset else {
            throw corrupt(archive, "central directory lies outside the file")
        }

        var entries: [Entry] = []
        entries.reserveCapacity(min(count, 1 << 20))
        var position = directoryOffset
        let directoryEnd = directoryOffset + directorySize
        for _ in 0 ..< count {
            guard position + 46 <= directoryEnd, u32(position) == 0x0201_4b50 else {
                throw corrupt(archive, "central directory entry \(entries.count) is damaged")
            }
            let flags = u16(position + 8)
            let method = UInt16(u16(position + 10))
            let crc = UInt32(u32(position + 16))
            var compressed = u32(position + 20)
            var uncompressed = u32(position + 24)
            let nameLength = u16(position + 28)
            let extraLength = u16(position + 30)
            let commentLength = u16(position + 32)
            let external = u32(position + 38)
            var localOffset = u32(position + 42)
            let nameStart = position + 46
            let extraStart = nameStart + nameLength
            let next = extraStart + extraLength + commentLength
            guard next <= directoryEnd else { throw corrupt(archive, "central directory entry \(entries.count) is damaged") }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[nameStart ..< extraStart]), as: UTF8.self)

            var extra = extraStart
            while extra + 4 <= extraStart + extraLength {
                let id = u16(extra)
                let size = u16(extra + 2)
                guard extra + 4 + size <= extraStart + extraLength else { break }
                if id == 0x0001 {
                    var field = extra + 4
                    func next64() throws -> Int {
                        guard field + 8 <= extra + 4 + size, let value = u64(field) else {
                            throw corrupt(archive, "zip64 extra field is too short", entry: name)
                        }
                        field += 8
                        return value
                    }
                    if uncompressed == 0xFFFF_FFFF { uncompressed = try next64() }
                    if compressed == 0xFFFF_FFFF { compressed = try next64() }
                    if localOffset == 0xFFFF_FFFF { localOffset = try next64() }
                }
                extra += 4 + size
            }

            let mode = external >> 16
            let type = mode & Int(S_IFMT)
            let isDirectory = name.hasSuffix("/") || type == Int(S_IFDIR)
            if type == Int(S_IFLNK) {
                throw EngineError(path: archive, subject: name, "unsafe entry: symbolic link")
            }
            if type != 0, type != Int(S_IFREG), type != Int(S_IFDIR) {
                throw EngineError(path: archive, subject: name, "unsafe entry: device or special file")
            }
            if flags & 1 != 0 {
                throw EngineError(path: archive, subject: name, "entry is encrypted")
            }
            if !isDirectory, method != 0, method != 8 {
                throw EngineError(path: archive, subject: name, "unsupported compression method \(method) (only stored and deflate)")
            }
            let components = try ExtractionRoot.safeComponents(name, archive: archive)
            if !isDirectory, components.isEmpty {
                throw EngineError(path: archive, subject: name, "file entry has an empty name")
            }
            entries.append(Entry(
                name: name, components: components, isDirectory: isDirectory,
                executable: mode & 0o100 != 0, method: method, crc32: crc,
                compressedSize: compressed, uncompressedSize: uncompressed, localHeaderOffset: localOffset))
            position = next
        }
        return entries
    }

    /// The compressed bytes of `entry`, found through its local header.
    private func data(of entry: Entry) throws -> UnsafeRawBufferPointer {
        let bytes = file.bytes
        let at = entry.localHeaderOffset
        guard at <= bytes.count - 30,
            UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)) == 0x0403_4b50
        else { throw Self.corrupt(path, "local header is missing", entry: entry.name) }
        let nameLength = Int(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: at + 26, as: UInt16.self)))
        let extraLength = Int(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: at + 28, as: UInt16.self)))
        guard let slice = file.slice(offset: at + 30 + nameLength + extraLength, length: entry.compressedSize) else {
            throw Self.corrupt(path, "data lies outside the file", entry: entry.name)
        }
        return slice
    }

    /// Writes every entry under `root`.
    func extract(into root: ExtractionRoot) throws {
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { chunk.deallocate() }
        for entry in entries {
            if entry.isDirectory {
                try root.makeDirectory(entry.components, entry: entry.name, archive: path)
                continue
            }
            let compressed = try data(of: entry)
            try root.writeFile(entry.components, executable: entry.executable, entry: entry.name, archive: path) { fd in
                var crc = crc32(0, nil, 0)
                var total = 0
                func emit(_ piece: UnsafeRawBufferPointer) throws {
                    var offset = 0
                    while offset < piece.count {
                        let length = min(piece.count - offset, 1 << 30)
                        crc = crc32(crc, piece.baseAddress!.assumingMemoryBound(to: Bytef.self) + offset, uInt(length))
                        offset += length
                    }
                    total += piece.count
                    try ExtractionRoot.writeAll(fd, piece, entry: entry.name, archive: path)
                }
                if entry.uncompressedSize == 0, entry.compressedSize == 0 {
                    return
                } else if entry.method == 0 {
                    guard entry.compressedSize == entry.uncompressedSize else {
                        throw Self.corrupt(path, "stored entry's sizes disagree", entry: entry.name)
                    }
                    try emit(compressed)
                } else {
                    let inflater = try InflateStream(input: compressed, framing: .raw, archive: path, entry: entry.name)
                    while !inflater.finished {
                        let count = try inflater.read(into: chunk)
                        guard total + count <= entry.uncompressedSize else {
                            throw Self.corrupt(path, "inflates to more than the \(entry.uncompressedSize) bytes declared", entry: entry.name)
                        }
                        try emit(UnsafeRawBufferPointer(rebasing: chunk[0 ..< count]))
                    }
                }
                guard total == entry.uncompressedSize else {
                    throw Self.corrupt(path, "inflates to \(total) bytes, expected \(entry.uncompressedSize)", entry: entry.name)
                }
                guard UInt32(crc) == entry.crc32 else {
                    throw Self.corrupt(path, "CRC-32 mismatch", entry: entry.name)
                }
            }
        }
    }
}
