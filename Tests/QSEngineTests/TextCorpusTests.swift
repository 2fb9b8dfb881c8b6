import Foundation
import Testing
@testable import QSEngine

@Suite struct TextCorpusTests {
    static func folder(_ files: [String: [UInt8]]) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("qs-texts-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (name, bytes) in files { try Data(bytes).write(to: folder.appendingPathComponent(name)) }
        return folder.path
    }

    @Test func collectionIsReadInByteOrderJoinedByABlankLine() throws {
        let folder = try Self.folder([
            "b_gut.txt": Array("second".utf8), "a_gut.txt": Array("first".utf8), "B_gut.txt": Array("upper".utf8),
            "a_gut_f.txt": Array("not matched".utf8),
        ])
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let corpus = try TextCorpus.collection(name: "t", folder: folder, glob: "*_gut.txt", minimumCharacters: nil)
        #expect(corpus.text == "upper\n\nfirst\n\nsecond")
        let prefix = try TextCorpus.collection(name: "t", folder: folder, glob: "*_gut.txt", minimumCharacters: 3)
        #expect(prefix.text == "upper")
    }

    @Test func invalidUTF8IsReplacedAndReported() throws {
        let folder = try Self.folder(["x.txt": [0x61, 0xFF, 0x62]])
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = (folder as NSString).appendingPathComponent("x.txt")
        let corpus = try TextCorpus.load(path, fetcher: Fetcher(home: folder))
        #expect(corpus.text == "a\u{FFFD}b")
        #expect(corpus.replacedFiles == [path])
    }

    @Test func emptyOrMissingTextsAreErrors() throws {
        let folder = try Self.folder(["empty.txt": []])
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let fetcher = Fetcher(home: folder)
        #expect(throws: EngineError.self) { try TextCorpus.load((folder as NSString).appendingPathComponent("empty.txt"), fetcher: fetcher) }
        do {
            _ = try TextCorpus.load("/nonexistent/text.txt", fetcher: fetcher)
            Issue.record("a missing text loaded")
        } catch let error as EngineError {
            #expect(error.message.contains("shakespeare"))
        }
        #expect(throws: EngineError.self) { try TextCorpus.load("smollm2-135m", fetcher: fetcher) }
    }

    @Test(arguments: [("a_gut.txt", "*_gut.txt", true), ("a_gut_f.txt", "*_gut.txt", false), ("ab.txt", "a?.txt", true), ("abc.txt", "a?.txt", false)])
    func globMatchesFileNames(name: String, glob: String, matches: Bool) {
        #expect(TextCorpus.matches(name, glob: glob) == matches)
    }
}
