#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A gzip-compressed tar file (an sdist), read as one stream: ustar headers with their name
/// prefix, GNU long names (`L`) and pax extended headers (`path`, `size`). Only folders and
/// regular files are written; links, devices, fifos and unknown entry types are refused.
struct TarGzArchive {
    let path: String
    private let file: MappedFile

    /// Metadata and extension bodies larger than this are refused (real ones are tiny).
    private static let maximumExtensionSize = 1 << 20

    init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
    }

    private func corrupt(_ entry: String? = nil, _ what: String) -> EngineError {
        EngineError(path: path, subject: entry, "archive is corrupt: \(what)")
    }

    /// Writes every entry under `root`.
    func extract(into root: ExtractionRoot) throws {
        let stream = try InflateStream(input: file.bytes, framing: .gzip, archive: path)
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { chunk.deallocate() }
        var header = [UInt8](repeating: 0, count: 512)

        /// Reads exactly `count` bytes into `chunk` (count <= chunk size); false at a clean end.
        func fill(_ count: Int, entry: String?) throws -> Bool {
            let got = try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: chunk[0 ..< count]))
            if got == count { return true }
            if got == 0, entry == nil { return false }
            throw corrupt(entry, "the tar data ends inside an entry")
        }
        /// Passes the `size` bytes of an entry body, then its padding, to `sink`.
        func body(_ size: Int, entry: String, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
            var left = size
            while left > 0 {
                let count = min(left, chunk.count)
                _ = try fill(count, entry: entry)
                try sink(UnsafeRawBufferPointer(rebasing: chunk[0 ..< count]))
                left -= count
            }
            let padding = (512 - size % 512) % 512
            if padding > 0 { _ = try fill(padding, entry: entry) }
        }
        func smallBody(_ size: Int, entry: String) throws -> [UInt8] {
            guard size <= Self.maximumExtensionSize else {
                throw EngineError(path: path, subject: entry, "extension header of \(size) bytes is too large")
            }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(size)
            try body(size, entry: entry) { bytes.append(contentsOf: $0) }
            return bytes
        }

        var longName: String?
        var paxPath: String?
        var paxSize: Int?
        var index = 0
        while true {
            guard try fill(512, entry: nil) else { break }
            header.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: chunk[0 ..< 512])) }
            if header.allSatisfy({ $0 == 0 }) { break }
            let fields = try TarHeader(header, index: index, archive: path)
            index += 1
            let name = paxPath ?? longName ?? fields.name
            let size = fields.type == "x" || fields.type == "g" || fields.type == "L" || fields.type == "K"
                ? fields.size : (paxSize ?? fields.size)

            switch fields.type {
            case "L":
                longName = String(decoding: try smallBody(size, entry: fields.name).prefix { $0 != 0 }, as: UTF8.self)
                continue
            case "K":
                _ = try smallBody(size, entry: fields.name)
                continue
            case "x":
                let records = try PaxRecords(try smallBody(size, entry: fields.name), entry: fields.name, archive: path)
                if let value = records.values["path"] { paxPath = value }
                if let value = records.values["size"] {
                    guard let number = Int(value), number >= 0 else {
                        throw corrupt(fields.name, "pax size '\(value)' is not a byte count")
                    }
                    paxSize = number
                }
                continue
            case "g":
                _ = try smallBody(size, entry: fields.name)
                continue
            default:
                break
            }
            longName = nil
            paxPath = nil
            paxSize = nil

            switch fields.type {
            case "0", "\0", "7", "5":
                let components = try ExtractionRoot.safeComponents(name, archive: path)
                if fields.type == "5" || name.hasSuffix("/") {
                    try root.makeDirectory(components, entry: name, archive: path)
                    try body(size, entry: name) { _ in }
                } else {
                    try root.writeFile(components, executable: fields.mode & 0o100 != 0, entry: name, archive: path) { fd in
                        try body(size, entry: name) { try ExtractionRoot.writeAll(fd, $0, entry: name, archive: path) }
                    }
                }
            case "1":
                throw EngineError(path: path, subject: name, "unsafe entry: hard link to '\(fields.linkName)'")
            case "2":
                throw EngineError(path: path, subject: name, "unsafe entry: symbolic link to '\(fields.linkName)'")
            case "3", "4":
                throw EngineError(path: path, subject: name, "unsafe entry: device file")
            case "6":
                throw EngineError(path: path, subject: name, "unsafe entry: fifo")
            default:
                throw EngineError(path: path, subject: name, "unsupported tar entry type '\(fields.type)'")
            }
        }
        // Read to the end of the gzip stream so that its CRC-32 and length are checked.
        while !stream.finished { _ = try stream.read(into: chunk) }
    }
}

/// The fields qs uses from one 512-byte tar header, checksum verified.
struct TarHeader {
    var name: String
    var mode: Int
    var size: Int
    var type: Character
    var linkName: String

    init(_ block: [UInt8], index: Int, archive: String) throws {
        func text(_ range: Range<Int>) -> String {
            String(decoding: block[range].prefix { $0 != 0 }, as: UTF8.self)
        }
        let rawName = text(0 ..< 100)
        var sum = 0
        for (offset, byte) in block.enumerated() { sum += (148 ..< 156).contains(offset) ? 32 : Int(byte) }
        guard let stored = Self.number(block[148 ..< 156]), stored == sum else {
            throw EngineError(path: archive, subject: rawName.isEmpty ? "entry \(index)" : rawName,
                "archive is corrupt: tar header checksum does not match (not a tar file?)")
        }
        guard let size = Self.number(block[124 ..< 136]), let mode = Self.number(block[100 ..< 108]) else {
            throw EngineError(path: archive, subject: rawName, "archive is corrupt: bad size or mode field in tar header")
        }
        let isPosixUstar = block[257 ..< 263].elementsEqual("ustar\0".utf8)
        let prefix = isPosixUstar ? text(345 ..< 500) : ""
        name = prefix.isEmpty ? rawName : prefix + "/" + rawName
        self.mode = mode
        self.size = size
        type = Character(UnicodeScalar(block[156]))
        linkName = text(157 ..< 257)
    }

    /// An octal field (NUL- or space-terminated), or a base-256 one (high bit set).
    static func number(_ field: ArraySlice<UInt8>) -> Int? {
        guard let first = field.first else { return nil }
        if first & 0x80 != 0 {
            var value = Int(first & 0x3F)
            guard first & 0x40 == 0 else { return nil }
            for byte in field.dropFirst() {
                guard value <= (Int.max >> 8) else { return nil }
                value = value << 8 | Int(byte)
            }
            return value
        }
        var value = 0
        var seenDigit = false
        for byte in field {
            switch byte {
            case UInt8(ascii: "0") ... UInt8(ascii: "7"):
                guard value <= (Int.max >> 3) else { return nil }
                value = value << 3 | Int(byte - UInt8(ascii: "0"))
                seenDigit = true
            case UInt8(ascii: " ") where !seenDigit:
                continue
            case 0, UInt8(ascii: " "):
                return value
            default:
                return nil
            }
        }
        return value
    }
}

/// The `key=value` records of a pax extended header (`LENGTH key=value\n` each).
struct PaxRecords {
    var values: [String: String] = [:]

    init(_ bytes: [UInt8], entry: String, archive: String) throws {
        var at = 0
        while at < bytes.count {
            if bytes[at] == 0 { break }
            guard let space = bytes[at...].firstIndex(of: UInt8(ascii: " ")),
                let length = Int(String(decoding: bytes[at ..< space], as: UTF8.self)),
                length > space - at + 1, at + length <= bytes.count, bytes[at + length - 1] == UInt8(ascii: "\n")
            else { throw EngineError(path: archive, subject: entry, "archive is corrupt: bad pax extended header") }
            let record = bytes[(space + 1) ..< (at + length - 1)]
            if let equals = record.firstIndex(of: UInt8(ascii: "=")) {
                let key = String(decoding: record[record.startIndex ..< equals], as: UTF8.self)
                values[key] = String(decoding: record[(equals + 1)...], as: UTF8.self)
            }
            at += length
        }
    }
}
