import Foundation
import Testing

@testable import QSREPL

struct HistoryTests {
    private func temporaryHistoryPath() -> (folder: String, file: String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("qs-history-\(UUID().uuidString)")
            .path
        return (folder, folder + "/nested/history")
    }

    @Test func linesAreKeptSavedAndLoadedBack() throws {
        let (folder, file) = temporaryHistoryPath()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        do {
            let editor = LineEditor(historyPath: file, historySize: 3)
            for line in [
                "load smollm2-135m", "quantize layer.* bits=4", "quantize layer.* bits=4", "eval ppl", "print \"a b\"",
            ] {
                editor.addToHistory(line)
            }
            #expect(editor.historyEntries == ["quantize layer.* bits=4", "eval ppl", "print \"a b\""])
        }
        #expect(FileManager.default.fileExists(atPath: file))
        let reloaded = LineEditor(historyPath: file)
        #expect(reloaded.historyEntries == ["quantize layer.* bits=4", "eval ppl", "print \"a b\""])
    }

    @Test func historyPathFollowsQSHome() {
        #expect(REPL.defaultHistoryPath(environment: ["QS_HOME": "/data/qs"]) == "/data/qs/history")
        #expect(REPL.defaultHistoryPath(environment: [:]).hasSuffix("/.cache/qs/history"))
    }

    @Test func cancellationIsSetAndReset() {
        Cancellation.reset()
        #expect(!Cancellation.isRequested)
        Cancellation.request()
        #expect(Cancellation.isRequested)
        Cancellation.reset()
        #expect(!Cancellation.isRequested)
    }
}
