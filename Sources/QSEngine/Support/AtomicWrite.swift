import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writing files and folders so that a reader sees either the old content or the complete
/// new one, never a partial file: everything is built under a temporary name next to its
/// destination, flushed to disk, and renamed into place.
package enum AtomicWrite {
    /// Writes `data` to `path` atomically. Refuses when `path` is, or is inside, one of
    /// `protecting` (the files a loaded model is read from).
    package static func write(_ data: Data, to path: String, protecting: [String] = []) throws {
        try write(to: path, protecting: protecting) { file in try file.write(data) }
    }

    /// Creates a temporary file next to `path`, lets `body` stream into it, then flushes it
    /// and renames it to `path`. When `body` throws, the temporary file is removed.
    package static func write(to path: String, protecting: [String] = [], _ body: (PendingFile) throws -> Void) throws {
        try refuseOverwriting(path, protecting: protecting)
        let file = try PendingFile(destination: path)
        try body(file)
        try file.commit()
    }

    /// Builds a folder at `path` atomically: `body` fills a temporary sibling folder (its path
    /// is the argument), which is then renamed to `path`; missing parent folders are created. An existing folder at `path` is
    /// replaced only when `replacing` is set. When `body` throws, the temporary folder is removed.
    package static func createFolder(
        at path: String, replacing: Bool = false, protecting: [String] = [], _ body: (String) throws -> Void
    ) throws {
        try refuseOverwriting(path, protecting: protecting)
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        let exists = fileManager.fileExists(atPath: path, isDirectory: &isDirectory)
        if exists && !replacing { throw EngineError(path: path, "already exists; choose another name or allow replacing it") }
        if exists && !isDirectory.boolValue { throw EngineError(path: path, "exists and is not a folder") }
        let parent = parentFolder(of: path)
        if !fileManager.fileExists(atPath: parent) {
            do {
                try fileManager.createDirectory(atPath: parent, withIntermediateDirectories: true)
            } catch {
                throw EngineError(path: parent, "cannot create folder: \(error.localizedDescription)")
            }
        }
        let temporary = temporarySibling(of: path)
        guard mkdir(temporary, 0o755) == 0 else { throw EngineError(path: path, "cannot create a folder next to it: \(errorText())") }
        do {
            try body(temporary)
            try syncDirectory(temporary)
            if exists {
                let old = temporarySibling(of: path)
                guard rename(path, old) == 0 else { throw EngineError(path: path, "cannot move the old folder aside: \(errorText())") }
                guard rename(temporary, path) == 0 else {
                    let message = errorText()
                    _ = rename(old, path)
                    throw EngineError(path: path, "cannot rename the new folder into place: \(message)")
                }
                try? fileManager.removeItem(atPath: old)
            } else {
                guard rename(temporary, path) == 0 else { throw EngineError(path: path, "cannot rename the new folder into place: \(errorText())") }
            }
            try syncDirectory(parentFolder(of: path))
        } catch {
            try? fileManager.removeItem(atPath: temporary)
            throw error
        }
    }

    /// Throws when `path` is one of `protecting`, lies inside one, or is a folder holding one.
    package static func refuseOverwriting(_ path: String, protecting: [String]) throws {
        let target = resolved(path)
        for source in protecting {
            let protected = resolved(source)
            if target == protected || protected.hasPrefix(target + "/") || target.hasPrefix(protected + "/") {
                throw EngineError(path: path, "refusing to overwrite '\(source)', which the loaded model is read from; save somewhere else")
            }
        }
    }

    /// The absolute path with symbolic links resolved as far as the path exists.
    static func resolved(_ path: String) -> String {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL
        var existing = absolute
        var rest: [String] = []
        while !FileManager.default.fileExists(atPath: existing.path), existing.pathComponents.count > 1 {
            rest.insert(existing.lastPathComponent, at: 0)
            existing.deleteLastPathComponent()
        }
        var result = existing.resolvingSymlinksInPath()
        for component in rest { result.appendPathComponent(component) }
        let text = result.path
        return text.count > 1 && text.hasSuffix("/") ? String(text.dropLast()) : text
    }

    /// A fresh hidden name in the same folder as `path`.
    static func temporarySibling(of path: String) -> String {
        let name = (path as NSString).lastPathComponent
        let folder = parentFolder(of: path)
        let unique = "\(getpid())-\(UInt64.random(in: 0 ... UInt64.max) & 0xFFFF_FFFF_FFFF)"
        return (folder as NSString).appendingPathComponent(".\(name).qs-tmp-\(unique)")
    }

    static func parentFolder(of path: String) -> String {
        let folder = (path as NSString).deletingLastPathComponent
        return folder.isEmpty ? "." : folder
    }

    /// Flushes a folder's entries (new and renamed names) to disk.
    static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { throw EngineError(path: path, "cannot open folder to flush it: \(errorText())") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw EngineError(path: path, "cannot flush folder: \(errorText())") }
    }

    static func errorText() -> String { String(cString: strerror(errno)) }
}

/// A file being written under a temporary name next to its destination. `commit()` flushes
/// it and renames it into place; a file never committed is removed when released.
package final class PendingFile {
    /// Where the file goes when committed.
    package let destination: String
    /// Where it is being written.
    package let temporaryPath: String
    private var descriptor: Int32
    private var renamed = false
    /// Bytes written so far.
    package private(set) var bytesWritten = 0

    /// Creates the temporary file (mode 0644 before the umask).
    package init(destination: String) throws {
        self.destination = destination
        temporaryPath = AtomicWrite.temporarySibling(of: destination)
        descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw EngineError(path: destination, "cannot create a file next to it: \(AtomicWrite.errorText())")
        }
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
        if !renamed { unlink(temporaryPath) }
    }

    /// Appends bytes.
    package func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard descriptor >= 0 else { throw EngineError(path: destination, "write after the file was closed") }
        var done = 0
        while done < bytes.count {
            let result = systemWrite(descriptor, bytes.baseAddress! + done, bytes.count - done)
            if result < 0 {
                if errno == EINTR { continue }
                throw EngineError(path: destination, "cannot write: \(AtomicWrite.errorText())")
            }
            done += result
        }
        bytesWritten += done
    }

    /// Appends bytes.
    package func write(_ data: Data) throws {
        try data.withUnsafeBytes { try write($0) }
    }

    /// Appends a string's UTF-8 bytes.
    package func write(_ text: String) throws {
        var text = text
        try text.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }

    /// Flushes the bytes to disk and closes the file (idempotent).
    package func finish() throws {
        guard descriptor >= 0 else { return }
        let fd = descriptor
        descriptor = -1
        let synced = fsync(fd) == 0
        let message = AtomicWrite.errorText()
        let closed = close(fd) == 0
        guard synced else { throw EngineError(path: destination, "cannot flush to disk: \(message)") }
        guard closed else { throw EngineError(path: destination, "cannot close: \(AtomicWrite.errorText())") }
    }

    /// Renames the finished file to its destination, replacing what was there.
    /// Does not flush the folder; `commit()` does.
    package func moveIntoPlace() throws {
        try finish()
        guard rename(temporaryPath, destination) == 0 else {
            throw EngineError(path: destination, "cannot rename into place: \(AtomicWrite.errorText())")
        }
        renamed = true
    }

    /// Flushes, renames into place and flushes the folder.
    package func commit() throws {
        try moveIntoPlace()
        try AtomicWrite.syncDirectory(AtomicWrite.parentFolder(of: destination))
    }
}

private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(fd, buffer, count)
    #else
    Darwin.write(fd, buffer, count)
    #endif
}
