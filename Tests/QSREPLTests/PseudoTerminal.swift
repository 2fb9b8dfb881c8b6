import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A program running in a pseudo-terminal, as if a person sat at it: the test types into the
/// master side and reads what the program draws through a small terminal emulator.
final class PseudoTerminal {
    enum Failure: Error, CustomStringConvertible {
        case system(String)
        var description: String {
            switch self {
            case .system(let message): message
            }
        }
    }

    let pid: pid_t
    private let master: Int32
    private(set) var screen = TerminalScreen()
    private var exitStatus: Int32?

    /// Starts `executable` in a new session whose controlling terminal is a fresh pty of
    /// `columns` × 24, so Ctrl-C reaches it as SIGINT.
    init(executable: String, arguments: [String] = [], environment: [String: String], columns: Int = 80) throws {
        // posix_openpt and friends are not in Swift's Glibc module, so this does what they do on
        // Linux: open the multiplexer, unlock the new pty, ask its number. The ioctl numbers are
        // macros Swift cannot import (TIOCSPTLCK, TIOCGPTN in asm-generic/ioctls.h).
        master = open("/dev/ptmx", O_RDWR | O_NOCTTY)
        var unlock: Int32 = 0
        var number: UInt32 = 0
        guard master >= 0, ioctl(master, UInt(0x4004_5431), &unlock) == 0,
            ioctl(master, UInt(0x8004_5430), &number) == 0
        else {
            throw Failure.system("cannot open a pseudo-terminal: \(String(cString: strerror(errno)))")
        }
        let slavePath = "/dev/pts/\(number)"
        var size = winsize(ws_row: 24, ws_col: UInt16(columns), ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(master, UInt(TIOCSWINSZ), &size)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addclose(&actions, master)
        posix_spawn_file_actions_addopen(&actions, 0, slavePath, O_RDWR, 0)
        posix_spawn_file_actions_adddup2(&actions, 0, 1)
        posix_spawn_file_actions_adddup2(&actions, 0, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // POSIX_SPAWN_SETSID (glibc): the child leads a new session, and the tty it opens as
        // its standard input becomes its controlling terminal.
        posix_spawnattr_setflags(
            &attributes, Int16(0x80) | Int16(POSIX_SPAWN_SETSIGMASK) | Int16(POSIX_SPAWN_SETSIGDEF))
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let status = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard status == 0 else {
            close(master)
            throw Failure.system("cannot start \(executable): \(String(cString: strerror(status)))")
        }
        pid = child
    }

    deinit {
        if exitStatus == nil {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        close(master)
    }

    /// Types `text` as if from the keyboard.
    func type(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { write(master, $0.baseAddress! + offset, $0.count - offset) }
            if written <= 0 { break }
            offset += written
        }
    }

    /// Reads output until `condition` holds on the screen or `timeout` seconds pass; returns
    /// whether it held.
    @discardableResult
    func wait(timeout: Double = 10, until condition: (TerminalScreen) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition(screen) {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 || !readAvailable(milliseconds: Int32(min(left, 0.1) * 1000)) && hasExited() {
                return condition(screen)
            }
        }
        return true
    }

    /// Waits for the program to exit and returns its exit status, or nil on timeout.
    func waitForExit(timeout: Double = 10) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while !hasExited() && Date() < deadline {
            _ = readAvailable(milliseconds: 50)
        }
        _ = readAvailable(milliseconds: 0)
        return exitStatus
    }

    private func hasExited() -> Bool {
        if exitStatus != nil { return true }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {
            exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        }
        return exitStatus != nil
    }

    /// Feeds whatever the program wrote within `milliseconds` to the screen; false when nothing
    /// came (or the program has gone).
    private func readAvailable(milliseconds: Int32) -> Bool {
        var descriptor = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, milliseconds) > 0, descriptor.revents & Int16(POLLIN) != 0 else { return false }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { read(master, $0.baseAddress, $0.count) }
        guard count > 0 else { return false }
        screen.feed(buffer[..<count])
        return true
    }
}

/// Just enough of a VT100 to know what a line editor shows: printable text, carriage return,
/// newline, backspace, and the CSI sequences for moving the cursor and erasing.
struct TerminalScreen: CustomStringConvertible {
    private(set) var rows: [[Character]] = [[]]
    private(set) var row = 0
    private(set) var column = 0
    /// Everything the program wrote, escapes included, for failure messages.
    private(set) var raw = ""
    private var pending: [UInt8] = []

    /// The row the cursor is on, trailing blanks kept.
    var currentLine: String { String(rows[row]) }
    /// The text left of the cursor on its row.
    var beforeCursor: String { String(rows[row].prefix(column)) }
    /// All rows, trailing blanks removed.
    var text: String {
        rows.map { String($0).replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }.joined(
            separator: "\n")
    }
    var description: String { "screen:\n\(text)\n--- raw: \(raw.debugDescription)" }

    mutating func feed(_ bytes: ArraySlice<UInt8>) {
        pending += bytes
        // Keep an incomplete UTF-8 or escape sequence for the next read.
        let text = String(decoding: pending, as: UTF8.self)
        if text.hasSuffix("\u{FFFD}") || text.range(of: #"\x{1B}(\[[0-9;?]*)?$"#, options: .regularExpression) != nil {
            return
        }
        pending = []
        raw += text
        var scalars = text.unicodeScalars.makeIterator()
        while let scalar = scalars.next() {
            switch scalar {
            case "\r": column = 0
            case "\n": moveTo(row: row + 1)
            case "\u{8}": column = max(0, column - 1)
            case "\u{1B}":
                guard let next = scalars.next() else { return }
                if next == "[" { csi(&scalars) } else if next == "(" || next == ")" { _ = scalars.next() }
            default:
                if scalar.value >= 0x20 { put(Character(scalar)) }
            }
        }
    }

    private mutating func csi(_ scalars: inout String.UnicodeScalarView.Iterator) {
        var parameters = ""
        while let scalar = scalars.next() {
            guard (0x40...0x7E).contains(scalar.value) else {
                parameters.unicodeScalars.append(scalar)
                continue
            }
            let numbers = parameters.split(separator: ";").map { Int($0.filter(\.isNumber)) ?? 0 }
            let count = max(numbers.first ?? 1, 1)
            switch scalar {
            case "A": moveTo(row: max(0, row - count))
            case "B": moveTo(row: row + count)
            case "C": column += count
            case "D": column = max(0, column - count)
            case "G": column = count - 1
            case "H":
                moveTo(row: max((numbers.first ?? 1) - 1, 0))
                column = max((numbers.count > 1 ? numbers[1] : 1) - 1, 0)
            case "K":
                if numbers.first == 2 {
                    rows[row] = []
                } else if (numbers.first ?? 0) == 0, column < rows[row].count {
                    rows[row].removeSubrange(column...)
                }
            case "J":
                if column < rows[row].count { rows[row].removeSubrange(column...) }
                rows.removeSubrange((row + 1)...)
            case "P":
                if column < rows[row].count { rows[row].removeSubrange(column..<min(column + count, rows[row].count)) }
            case "@":
                if column <= rows[row].count {
                    rows[row].insert(contentsOf: repeatElement(" ", count: count), at: column)
                }
            default: break
            }
            return
        }
    }

    private mutating func moveTo(row target: Int) {
        while rows.count <= target { rows.append([]) }
        row = target
    }

    private mutating func put(_ character: Character) {
        while rows[row].count < column { rows[row].append(" ") }
        if column < rows[row].count { rows[row][column] = character } else { rows[row].append(character) }
        column += 1
    }
}
