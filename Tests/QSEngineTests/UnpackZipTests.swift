import CZlib
import Foundation
import Testing
@testable import QSEngine

/// One entry of a zip archive written by `makeZip`.
struct ZipSpec {
    var name: String
    var data: [UInt8] = []
    /// The unix mode (type and permission bits) stored in the external attributes.
    var mode: UInt32 = 0o100644
    var deflate = true
}

/// Compresses `bytes` with zlib: raw deflate (`windowBits` -15) or gzip (31).
func zlibCompress(_ bytes: [UInt8], windowBits: Int32) -> [UInt8] {
    var stream = z_stream()
    let status = deflateInit2_(
        &stream, 6, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
    precondition(status == Z_OK)
    defer { deflateEnd(&stream) }
    var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))) + 64)
    var input = bytes
    let produced = input.withUnsafeMutableBufferPointer { inBuffer in
        output.withUnsafeMutableBufferPointer { outBuffer in
            stream.next_in = inBuffer.baseAddress
            stream.avail_in = uInt(inBuffer.count)
            stream.next_out = outBuffer.baseAddress
            stream.avail_out = uInt(outBuffer.count)
            let result = CZlib.deflate(&stream, Z_FINISH)
            precondition(result == Z_STREAM_END)
            return outBuffer.count - Int(stream.avail_out)
        }
    }
    return Array(output[0 ..< produced])
}

func crc32Of(_ bytes: [UInt8]) -> UInt32 {
    UInt32(bytes.withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) })
}

extension Array where Element == UInt8 {
    mutating func put16(_ value: Int) { append(contentsOf: Swift.withUnsafeBytes(of: UInt16(value).littleEndian, Array.init)) }
    mutating func put32(_ value: Int) { append(contentsOf: Swift.withUnsafeBytes(of: UInt32(value).littleEndian, Array.init)) }
    mutating func put64(_ value: Int) { append(contentsOf: Swift.withUnsafeBytes(of: UInt64(value).littleEndian, Array.init)) }
}

/// A zip file holding `entries`, with zip64 records for every size and offset when asked.
func makeZip(_ entries: [ZipSpec], zip64: Bool = false) -> [UInt8] {
    var out: [UInt8] = []
    var central: [UInt8] = []
    for entry in entries {
        let name = Array(entry.name.utf8)
        let payload = entry.deflate ? zlibCompress(entry.data, windowBits: -15) : entry.data
        let crc = crc32Of(entry.data)
        let offset = out.count
        out.put32(0x0403_4b50)
        out.put16(zip64 ? 45 : 20)
        out.put16(0)
        out.put16(entry.deflate ? 8 : 0)
        out.put32(0)
        out.put32(Int(crc))
        out.put32(zip64 ? 0xFFFF_FFFF : payload.count)
        out.put32(zip64 ? 0xFFFF_FFFF : entry.data.count)
        out.put16(name.count)
        out.put16(zip64 ? 20 : 0)
        out += name
        if zip64 {
            out.put16(1)
            out.put16(16)
            out.put64(entry.data.count)
            out.put64(payload.count)
        }
        out += payload

        central.put32(0x0201_4b50)
        central.put16(3 << 8 | 45)
        central.put16(zip64 ? 45 : 20)
        central.put16(0)
        central.put16(entry.deflate ? 8 : 0)
        central.put32(0)
        central.put32(Int(crc))
        central.put32(zip64 ? 0xFFFF_FFFF : payload.count)
        central.put32(zip64 ? 0xFFFF_FFFF : entry.data.count)
        central.put16(name.count)
        central.put16(zip64 ? 28 : 0)
        central.put16(0)
        central.put16(0)
        central.put16(0)
        central.put32(Int(entry.mode) << 16)
        central.put32(zip64 ? 0xFFFF_FFFF : offset)
        central += name
        if zip64 {
            central.put16(1)
            central.put16(24)
            central.put64(entry.data.count)
            central.put64(payload.count)
            central.put64(offset)
        }
    }
    let directoryOffset = out.count
    out += central
    if zip64 {
        let recordOffset = out.count
        out.put32(0x0606_4b50)
        out.put64(44)
        out.put16(45)
        out.put16(45)
        out.put32(0)
        out.put32(0)
        out.put64(entries.count)
        out.put64(entries.count)
        out.put64(central.count)
        out.put64(directoryOffset)
        out.put32(0x0706_4b50)
        out.put32(0)
        out.put64(recordOffset)
        out.put32(1)
    }
    out.put32(0x0605_4b50)
    out.put16(0)
    out.put16(0)
    out.put16(zip64 ? 0xFFFF : entries.count)
    out.put16(zip64 ? 0xFFFF : entries.count)
    out.put32(zip64 ? 0xFFFF_FFFF : central.count)
    out.put32(zip64 ? 0xFFFF_FFFF : directoryOffset)
    out.put16(0)
    return out
}

/// A fresh empty folder for one test, removed by `cleanUp`.
struct Scratch {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.path + "/qs-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let file = path + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        return file
    }

    /// Every file and folder below the scratch folder, relative, sorted.
    func tree() -> [String] {
        (FileManager.default.subpaths(atPath: path) ?? []).sorted()
    }

    func read(_ relative: String) -> [UInt8]? {
        FileManager.default.contents(atPath: path + "/" + relative).map(Array.init)
    }

    func cleanUp() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

@Suite struct UnpackZipTests {
    let text = Array(String(repeating: "to be or not to be, ", count: 500).utf8)

    @Test(arguments: [false, true])
    func unpacksFilesAndFolders(zip64: Bool) throws {
        let scratch = try Scratch()
        defer { scratch.cleanUp() }
        let archive = try scratch.write("a.whl", makeZip([
            ZipSpec(name: "pkg/", mode: 0o040755, deflate: false),
            ZipSpec(name: "pkg/model/weights.bin", data: text),
            ZipSpec(name: "pkg/stored.txt", data: Array("stored".utf8), deflate: false),
            ZipSpec(name: "./pkg/empty", data: []),
            ZipSpec(name: "tool", data: Array("#!/bin/sh\n".utf8), mode: 0o100755),
        ], zip64: zip64))
        try Unpacker.unpackZip(archive, into: scratch.path + "/out")
        #expect(scratch.tree() == [
            "a.whl", "out", "out/pkg", "out/pkg/empty", "out/pkg/model", "out/pkg/model/weights.bin",
            "out/pkg/stored.txt", "out/tool",
        ])
        #expect(scratch.read("out/pkg/model/weights.bin") == text)
        #expect(scratch.read("out/pkg/stored.txt") == Array("stored".utf8))
        #expect(scratch.read("out/pkg/empty") == [])
        #expect(FileManager.default.isExecutableFile(atPath: scratch.path + "/out/tool"))
    }

    @Test(arguments: [
        (ZipSpec(name: "../evil", data: [1]), "'..'"),
        (ZipSpec(name: "a/../../b", data: [1]), "'..'"),
        (ZipSpec(name: "/qs-unpack-test-abs-\(UUID().uuidString)", data: [1]), "absolute"),
        (ZipSpec(name: "link", data: Array("../../etc/passwd".utf8), mode: 0o120777, deflate: false), "symbolic link"),
        (ZipSpec(name: "dev", mode: 0o020644, deflate: false), "device"),
    ])
    func refusesUnsafeEntries(bad: ZipSpec, reason: String) throws {
        let scratch = try Scratch()
        defer { scratch.cleanUp() }
        let archive = try scratch.write("a.whl", makeZip([ZipSpec(name: "good/file", data: text), bad]))
        let error = #expect(throws: EngineError.self) {
            try Unpacker.unpackZip(archive, into: scratch.path + "/out")
        }
        #expect(error?.subject == bad.name)
        #expect(error?.path == archive)
        #expect(error?.message.contains("unsafe entry") == true)
        #expect(error?.message.contains(reason) == true)
        #expect(scratch.tree() == ["a.whl"])
        if bad.name.hasPrefix("/") { #expect(!FileManager.default.fileExists(atPath: bad.name)) }
    }

    @Test func refusesCorruptData() throws {
        let scratch = try Scratch()
        defer { scratch.cleanUp() }
        var bytes = makeZip([ZipSpec(name: "first", data: [1, 2, 3]), ZipSpec(name: "big", data: text)])
        let start = 30 + 5 + zlibCompress([1, 2, 3], windowBits: -15).count + 30 + 3 + 2
        for index in start ..< start + 6 { bytes[index] ^= 0x5A }
        let archive = try scratch.write("a.whl", bytes)
        let error = #expect(throws: EngineError.self) {
            try Unpacker.unpackZip(archive, into: scratch.path + "/out")
        }
        #expect(error?.message.contains("archive is corrupt") == true)
        #expect(error?.subject == "big")
        #expect(scratch.tree() == ["a.whl"])
    }

    @Test func refusesTruncatedOrForeignFiles() throws {
        let scratch = try Scratch()
        defer { scratch.cleanUp() }
        let whole = makeZip([ZipSpec(name: "big", data: text)])
        let truncated = try scratch.write("cut.whl", Array(whole[0 ..< whole.count - 30]))
        let foreign = try scratch.write("text.whl", Array("just some text, not a zip".utf8))
        for archive in [truncated, foreign] {
            let error = #expect(throws: EngineError.self) {
                try Unpacker.unpackZip(archive, into: scratch.path + "/out")
            }
            #expect(error?.path == archive)
            #expect(error?.message.contains("archive is corrupt") == true)
        }
        #expect(scratch.tree() == ["cut.whl", "text.whl"])
    }

    @Test func refusesExistingTarget() throws {
        let scratch = try Scratch()
        defer { scratch.cleanUp() }
        let archive = try scratch.write("a.whl", makeZip([ZipSpec(name: "f", data: [1])]))
        try FileManager.default.createDirectory(atPath: scratch.path + "/out", withIntermediateDirectories: false)
        #expect(throws: EngineError.self) { try Unpacker.unpackZip(archive, into: scratch.path + "/out") }
        #expect(scratch.tree() == ["a.whl", "out"])
    }
}
