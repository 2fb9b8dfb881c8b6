import CEditLine
import Foundation

/// The REPL's line editor: the one place that talks to libedit. Emacs keys, a history kept in a
/// file, Ctrl-R search, and Tab handed to a Swift function.
final class LineEditor {
    /// What one call to `readLine` got.
    enum Input: Equatable {
        /// A line, without its newline.
        case line(String)
        /// Ctrl-C at the prompt: the line was dropped.
        case interrupted
        /// Ctrl-D on an empty line, or the end of piped input.
        case endOfInput
    }

    /// The prompt shown by the next `readLine`.
    var prompt: String {
        didSet { setPromptBuffer(prompt) }
    }
    /// Decides what Tab does, given the line and the cursor's UTF-8 offset in it.
    var tabHandler: ((String, Int) -> TabAction)?

    private let editLine: OpaquePointer
    private let history: OpaquePointer
    private let historyPath: String
    private var event = HistEvent()
    private var promptBuffer: UnsafeMutablePointer<CChar>

    init(program: String = "qs", historyPath: String, historySize: Int = 1000, prompt: String = "> ") {
        self.historyPath = historyPath
        self.prompt = prompt
        promptBuffer = strdup(prompt)
        guard let editLine = el_init(program, qs_stdin(), qs_stdout(), qs_stderr()), let history = history_init() else {
            fatalError("libedit could not initialise")
        }
        self.editLine = editLine
        self.history = history
        _ = qs_history_setsize(history, &event, Int32(historySize))
        _ = qs_history_setunique(history, &event, 1)
        if FileManager.default.fileExists(atPath: historyPath) {
            _ = qs_history_string(history, &event, H_LOAD, historyPath)
        }

        qs_el_set_clientdata(editLine, Unmanaged.passUnretained(self).toOpaque())
        qs_el_set_string(editLine, EL_EDITOR, "emacs")
        // No EL_SIGNAL: libedit's own SIGINT handler leaves the terminal in cooked mode after an
        // interrupted el_gets (typed text then echoes twice). SIGINT is Cancellation's; the
        // window size is read again before each line instead of on SIGWINCH.
        qs_el_set_int(editLine, EL_SIGNAL, 0)
        qs_el_set_history(editLine, history)
        qs_el_set_prompt(editLine) { editLine in
            guard let editLine, let editor = LineEditor.from(editLine) else { return nil }
            return editor.promptBuffer
        }
        qs_el_add_function(editLine, "qs-complete", "complete the word before the cursor") { editLine, _ in
            guard let editLine, let editor = LineEditor.from(editLine) else { return UInt8(CC_ERROR) }
            return editor.handleTab()
        }
        qs_el_set_getc(editLine) { editLine, character in
            guard let editLine, let character, let editor = LineEditor.from(editLine) else { return -1 }
            return editor.readCharacter(into: character)
        }
        qs_el_bind(editLine, "^I", "qs-complete")
        qs_el_bind(editLine, "^R", "em-inc-search-prev")
    }

    deinit {
        el_end(editLine)
        history_end(history)
        free(promptBuffer)
    }

    /// Reads one line with editing; the prompt is `prompt`.
    func readLine() -> Input {
        var count: Int32 = 0
        el_resize(editLine)
        // Raw mode before the prompt is drawn: on glibc libedit switches only at its first read,
        // and keys typed in between would be echoed twice by the terminal.
        qs_el_set_int(editLine, EL_PREP_TERM, 1)
        errno = 0
        guard let text = el_gets(editLine, &count) else {
            return count == -1 && errno == EINTR ? .interrupted : .endOfInput
        }
        var line = String(cString: text)
        if line.hasSuffix("\n") { line.removeLast() }
        return .line(line)
    }

    /// Adds a line to the history (a repeat of the last one is collapsed) and saves the file.
    func addToHistory(_ line: String) {
        _ = qs_history_string(history, &event, H_ENTER, line)
        saveHistory()
    }

    /// Writes the history file, creating its folder.
    func saveHistory() {
        let folder = (historyPath as NSString).deletingLastPathComponent
        if !folder.isEmpty {
            try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        _ = qs_history_string(history, &event, H_SAVE, historyPath)
    }

    /// The history, oldest first.
    var historyEntries: [String] {
        var entries: [String] = []
        var status = qs_history_step(history, &event, H_LAST)
        while status == 0 {
            entries.append(String(cString: event.str))
            status = qs_history_step(history, &event, H_PREV)
        }
        return entries
    }

    private static func from(_ editLine: OpaquePointer) -> LineEditor? {
        guard let data = qs_el_get_clientdata(editLine) else { return nil }
        return Unmanaged<LineEditor>.fromOpaque(data).takeUnretainedValue()
    }

    private func setPromptBuffer(_ text: String) {
        free(promptBuffer)
        promptBuffer = strdup(text)
    }

    /// libedit's character reader: one UTF-8 character from standard input, waiting on the
    /// cancellation pipe too, so a Ctrl-C that lands while libedit is busy (not blocked in a
    /// read) still ends the line with EINTR instead of being lost. Returns 1, 0 at end of input,
    /// or -1 with errno set.
    private func readCharacter(into character: UnsafeMutablePointer<wchar_t>) -> Int32 {
        var pending: [UInt8] = []
        while true {
            if Cancellation.isRequested {
                errno = EINTR
                return -1
            }
            var descriptors = [pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)]
            if Cancellation.wakeDescriptor >= 0 {
                descriptors.append(pollfd(fd: Cancellation.wakeDescriptor, events: Int16(POLLIN), revents: 0))
            }
            if poll(&descriptors, nfds_t(descriptors.count), -1) < 0 {
                if errno == EINTR { continue }
                return -1
            }
            guard descriptors[0].revents != 0 else { continue }
            var byte: UInt8 = 0
            let count = read(STDIN_FILENO, &byte, 1)
            if count == 0 { return 0 }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return -1
            }
            pending.append(byte)
            let lead = pending[0]
            let length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 0
            if pending.count < length { continue }
            let scalar = String(validating: pending, as: UTF8.self)?.unicodeScalars.first
            pending = []
            if let scalar {
                character.pointee = wchar_t(bitPattern: scalar.value)
                return 1
            }
        }
    }

    private func handleTab() -> UInt8 {
        guard let tabHandler, let info = el_line(editLine)?.pointee else { return UInt8(CC_ERROR) }
        let length = info.lastchar - info.buffer
        let bytes = UnsafeRawBufferPointer(start: info.buffer, count: length)
        let line = String(decoding: bytes, as: UTF8.self)
        switch tabHandler(line, info.cursor - info.buffer) {
        case .insert(let text):
            return el_insertstr(editLine, text) == 0 ? UInt8(CC_REFRESH) : UInt8(CC_ERROR)
        case .list(let items):
            let columns = Int(qs_el_columns(editLine, 80))
            fputs("\n" + CandidateColumns.format(items, width: columns), qs_stdout())
            fflush(qs_stdout())
            return UInt8(CC_REDISPLAY)
        case .beep:
            return UInt8(CC_REFRESH_BEEP)
        }
    }
}
