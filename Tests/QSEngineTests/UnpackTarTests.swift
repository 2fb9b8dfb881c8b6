import Foundation
import Testing
@testable import QSEngine

/// One member of a tar file written by `makeTar`.
struct TarSpec: Sendable {
    var name: String
    var type: Character = "0"
    var data: [UInt8] = []
    var mode = 0o644
    var linkName = ""
    /// The ustar name prefix (joined to `name` with a slash by readers).
    var prefix = ""
}

/// One 512-byte ustar header with a correct checksum.
func tarHeader(_ spec: TarSpec, size: Int) -> [UInt8] {
    var block = [UInt8](repeating: 0, count: 512)
    func put(_ text: String, at offset: Int, width: Int) {
        let bytes = Array(text.utf8)
        precondition(bytes.count <= width, "tar field too long: \(text)")
        block.replaceSubrange(offset ..< offset + bytes.count, with: bytes)
    }
    func octal(_ value: Int, at offset: Int, width: Int) {
        let digits = String(value, radix: 8)
        put(String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits, at: offset, width: width)
    }
    put(spec.name, at: 0, width: 100)
    octal(spec.mode, at: 100, width: 8)
    octal(0, at: 108, width: 8)
    octal(0, at: 116, width: 8)
    octal(size, at: 124, width: 12)
    octal(0, at: 136, width: 12)
    block[156] = spec.type.asciiValue!
    put(spec.linkName, at: 157, width: 100)
    put("ustar\0", at: 257, width: 6)
    put("00", at: 263, width: 2)
    put(spec.prefix, at: 345, width: 155)
    put("        ", at: 148, width: 8)
    let sum = block.reduce(0) { $0 + Int($1) }
    octal(sum, at: 148, width: 7)
    return block
}

/// A tar file holding `members`, ended by two zero blocks.
func makeTar(_ members: [TarSpec]) -> [UInt8] {
    var out: [UInt8] = []
    for member in members {
        out += tarHeader(member, size: member.data.count)
        out += member.data
        out += [UInt8](repeating: 0, count: (512 - member.data.count % 512) % 512)
    }
    return out + [UInt8](repeating: 0, count: 1024)
}

/// A pax extended header member setting `records` for the next member.
func paxMember(_ records: [(String, String)]) -> TarSpec {
    var body = ""
    for (key, value) in records {
        let tail = " \(key)=\(value)\n"
        var length = tail.utf8.count + 1
        while String(length).utf8.count + tail.utf8.count != length { length += 1 }
        body += "\(length)\(tail)"
    }
    return TarSpec(name: "PaxHeader", type: "x", data: Array(body.utf8))
}

func gzip(_ bytes: [UInt8]) -> [UInt8] { zlibCompress(bytes, windowBits: 31) }

@Suite struct UnpackTarTests {
    let text = Array(String(repeating: "Now is the winter of our discontent. ", count: 300).utf8)

    @Test func unpacksUstarGnuAndPaxNames() throws {
        let scratch = try Scratch()
        defer { scratch.cleanUp() }
        let longName = "pkg-1.0/" + String(repeating: "deep/", count: 30) + "file.txt"
        let paxName = "pkg-1.0/" + String(repeating: "pax/", count: 40) + "play.txt"
        let tar = makeTar([
            TarSpec(name: "pkg-1.0/", type: "5", mode: 0o755),
            TarSpec(name: "texts/a_gut.txt", data: text, prefix: "pkg-1.0/data"),
            TarSpec(name: "././@LongLink", type: "L", data: Array(longName.utf8) + [0]),
            TarSpec(name: "truncated-name", data: [7, 8, 9]),
            paxMember([("path", paxName), ("mtime", "1.5")]),
            TarSpec(name: "ignored-name", data: Array("pax".utf8)),
            TarSpec(name: "pkg-1.0/run.sh", data: Array("#!/bin/sh\n".utf8), mode: 0o755),
            TarSpec(name: "./pkg-1.0/empty", data: []),
        ])
        // Two gzip members in a row are one stream, as gzip(1) reads them.
        let archive = try scratch.write("a.tar.gz", gzip(Array(tar[0 ..< 1024])) + gzip(Array(tar[1024...])))
        try Unpacker.unpackTarGz(archive, into: scratch.path + "/out")
        #expect(scratch.read("out/pkg-1.0/data/texts/a_gut.txt") == text)
        #expect(scratch.read("out/" + longName) == [7, 8, 9])
        #expect(scratch.read("out/" + paxName) == Array("pax".utf8))
        #expect(scratch.read("out/pkg-1.0/empty") == [])
        #expect(FileManager.default.isExecutableFile(atPath: scratch.path + "/out/pkg-1.0/run.sh"))
        #expect(!scratch.tree().contains { $0.contains("truncated-name") || $0.contains("ignored-name") || $0.contains("PaxHeader") })
        #expect(scratch.tree().filter { !$0.hasPrefix("out") } == ["a.tar.gz"])
    }

    @Test func paxSizeOverridesHeaderSize() throws {
        let scratch = try Scratch()
        defer { scratch.cleanUp() }
        var tar: [UInt8] = []
        tar += makeTar([paxMember([("size", "600")])]).dropLast(1024)
        tar += tarHeader(TarSpec(name: "big"), size: 0)
        let body = [UInt8](repeating: 65, count: 600)
        tar += body + [UInt8](repeating: 0, count: 1024 - 600) + [UInt8](repeating: 0, count: 1024)
        let archive = try scratch.write("a.tar.gz", gzip(tar))
        try Unpacker.unpackTarGz(archive, into: scratch.path + "/out")
        #expect(scratch.read("out/big") == body)
    }

    static let unsafe: [(TarSpec, String, String)] = [
        (TarSpec(name: "../evil", data: [1]), "../evil", "'..'"),
        (TarSpec(name: "a/../../b", data: [1]), "a/../../b", "'..'"),
        (TarSpec(name: "/qs-unpack-test-abs-\(UUID().uuidString)", data: [1]), "", "absolute"),
        (TarSpec(name: "pkg-1.0/link", type: "2", linkName: "/etc/passwd"), "pkg-1.0/link", "symbolic link"),
        (TarSpec(name: "pkg-1.0/hard", type: "1", linkName: "/etc/passwd"), "pkg-1.0/hard", "hard link"),
        (TarSpec(name: "pkg-1.0/tty", type: "3"), "pkg-1.0/tty", "device"),
        (TarSpec(name: "pkg-1.0/pipe", type: "6"), "pkg-1.0/pipe", "fifo"),
        (TarSpec(name: "evil", data: [1], prefix: ".."), "../evil", "'..'"),
    ]

    @Test(arguments: unsafe)
    func refusesUnsafeEntries(bad: TarSpec, expectedName: String, reason: String) throws {
        let scratch = try Scratch()
        defer { scratch.cleanUp() }
        let archive = try scratch.write("a.tar.gz", gzip(makeTar([
            TarSpec(name: "pkg-1.0/", type: "5"), TarSpec(name: "pkg-1.0/good.txt", data: text), bad,
        ])))
        let error = #expect(throws: EngineError.self) {
            try Unpacker.unpackTarGz(archive, into: scratch.path + "/out")
        }
        #expect(error?.subject == (expectedName.isEmpty ? bad.name : expectedName))
        #expect(error?.path == archive)
        #expect(error?.message.contains("unsafe entry") == true)
        #expect(error?.message.contains(reason) == true)
        #expect(scratch.tree() == ["a.tar.gz"])
        if bad.name.hasPrefix("/") { #expect(!FileManager.default.fileExists(atPath: bad.name)) }
    }

    @Test func refusesUnsafeLongNames() throws {
        let scratch = try Scratch()
        defer { scratch.cleanUp() }
        for hidden in [
            [TarSpec(name: "././@LongLink", type: "L", data: Array("../evil".utf8) + [0]), TarSpec(name: "safe", data: [1])],
            [paxMember([("path", "a/../../evil")]), TarSpec(name: "safe", data: [1])],
        ] {
            let archive = try scratch.write("a.tar.gz", gzip(makeTar(hidden)))
            let error = #expect(throws: EngineError.self) {
                try Unpacker.unpackTarGz(archive, into: scratch.path + "/out")
            }
            #expect(error?.message.contains("unsafe entry") == true)
            #expect(error?.subject?.hasSuffix("evil") == true)
            #expect(scratch.tree() == ["a.tar.gz"])
        }
    }

    @Test func refusesCorruptArchives() throws {
        let scratch = try Scratch()
        defer { scratch.cleanUp() }
        let tar = makeTar([TarSpec(name: "pkg/a.txt", data: text), TarSpec(name: "pkg/b.txt", data: text)])
        var badChecksum = tar
        badChecksum[20] ^= 1
        let compressed = gzip(tar)
        var flipped = compressed
        flipped[compressed.count / 2] ^= 0xFF
        let cases: [(String, [UInt8])] = [
            ("checksum.tar.gz", gzip(badChecksum)),
            ("truncated.tar.gz", Array(compressed[0 ..< compressed.count / 2])),
            ("flipped.tar.gz", flipped),
            ("plain.tar.gz", Array("not gzip at all".utf8)),
            ("cut-tar.tar.gz", gzip(Array(tar[0 ..< 700]))),
        ]
        for (name, bytes) in cases {
            let archive = try scratch.write(name, bytes)
            let error = #expect(throws: EngineError.self, "\(name)") {
                try Unpacker.unpackTarGz(archive, into: scratch.path + "/out")
            }
            #expect(error?.path == archive)
            #expect(error?.message.contains("archive is corrupt") == true, "\(name): \(String(describing: error))")
            #expect(!FileManager.default.fileExists(atPath: scratch.path + "/out"))
        }
        #expect(scratch.tree().count == cases.count)
    }

    @Test(arguments: [
        ("0000644 \0", 0o644), ("     17\0", 0o17), ("00000001750\0", 1000),
    ])
    func readsOctalFields(field: String, value: Int) {
        #expect(TarHeader.number(ArraySlice(Array(field.utf8))) == value)
    }

    @Test func readsBase256Fields() {
        let field: [UInt8] = [0x80, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00, 0x00]
        #expect(TarHeader.number(ArraySlice(field)) == 1 << 24)
        #expect(TarHeader.number(ArraySlice(Array("12x4".utf8))) == nil)
    }
}
