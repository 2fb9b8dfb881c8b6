import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Opening and reading the files a person names, so that what is not a regular file is an
/// error that says what it is, never a read that blocks (a FIFO) or a "no such file" for a
/// folder. Every model, configuration, tokenizer, index and text is read through here.
package enum FileAccess {
    /// What a path names.
    package enum Kind: Equatable, Sendable {
        case regular, directory, missing
        /// Anything else: a FIFO, a socket, a device.
        case other(String)
    }

    /// What `path` names (following symbolic links).
    package static func kind(_ path: String) -> Kind {
        var info = stat()
        guard stat(path, &info) == 0 else { return .missing }
        return kind(mode: info.st_mode)
    }

    static func kind(mode: mode_t) -> Kind {
        switch mode & S_IFMT {
        case S_IFREG: .regular
        case S_IFDIR: .directory
        case S_IFIFO: .other("a FIFO")
        case S_IFSOCK: .other("a socket")
        case S_IFCHR: .other("a character device")
        case S_IFBLK: .other("a block device")
        default: .other("not a regular file")
        }
    }

    /// The error for a path that is not the regular file expected of it, or nil when it is one.
    package static func problem(_ path: String, expected what: String = "a file") -> EngineError? {
        switch kind(path) {
        case .regular: nil
        case .missing: EngineError(path: path, "no such file")
        case .directory: EngineError(path: path, "is a folder, expected \(what)")
        case .other(let name): EngineError(path: path, "is \(name), not a regular file; expected \(what)")
        }
    }

    /// Opens a regular file for reading. The open does not wait for a writer (O_NONBLOCK), and
    /// the descriptor is checked again, so a FIFO is refused, not waited on.
    package static func openRegular(_ path: String, expected what: String = "a file") throws -> Int32 {
        if let problem = problem(path, expected: what) { throw problem }
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw EngineError(path: path, "cannot open: \(String(cString: strerror(errno)))") }
        var info = stat()
        guard fstat(fd, &info) == 0, kind(mode: info.st_mode) == .regular else {
            close(fd)
            throw EngineError(path: path, "is not a regular file; expected \(what)")
        }
        // Reads of a regular file do not block; clear the flag so they behave as usual.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return fd
    }

    /// The whole contents of a regular file of at most `limit` bytes.
    package static func contents(_ path: String, expected what: String = "a file", limit: Int = 1 << 30) throws -> Data {
        let fd = try openRegular(path, expected: what)
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw EngineError(path: path, "cannot stat: \(String(cString: strerror(errno)))") }
        let size = Int(info.st_size)
        guard size <= limit else {
            throw EngineError(path: path, "is \(size) bytes, more than the \(limit) a \(what) may be")
        }
        return try readAll(fd, path: path, limit: limit, what: what)
    }

    /// Reads a descriptor to its end, at most `limit` bytes.
    static func readAll(_ fd: Int32, path: String, limit: Int, what: String) throws -> Data {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw EngineError(path: path, "cannot read: \(String(cString: strerror(errno)))")
            }
            if count == 0 { return data }
            data.append(contentsOf: buffer[0 ..< count])
            if data.count > limit { throw EngineError(path: path, "is more than \(limit) bytes, more than \(what) may be") }
        }
    }

    /// The contents of a script: a regular file, or something a shell hands over (a FIFO of
    /// `<(...)`, /dev/stdin, /dev/null), read to its end; never a folder.
    package static func scriptContents(_ path: String, limit: Int) throws -> Data {
        switch kind(path) {
        case .missing: throw EngineError(path: path, "no such file")
        case .directory: throw EngineError(path: path, "is a folder, not a script")
        case .other("a socket"): throw EngineError(path: path, "is a socket, not a script")
        default: break
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw EngineError(path: path, "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) == 0, kind(mode: info.st_mode) == .regular, Int(info.st_size) > limit {
            throw EngineError(path: path, "is \(Int(info.st_size)) bytes; a script is at most \(limit >> 20) MB of text")
        }
        return try readAll(fd, path: path, limit: limit, what: "a script")
    }
}
