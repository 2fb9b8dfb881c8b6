import CQSKernels
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

    /// Builds a folder at `path` atomically: `body` fills a temporary sibling folder (its path is
    /// the argument), which then takes the place of `path` in one step. Missing parent folders
    /// are created. Temporaries that killed writes left beside `path` are removed first.
    ///
    /// An existing folder at `path` is an error unless `overwrite` is set; then the new files
    /// replace the files of the same names, and every other entry of the old folder is kept (it
    /// is hard-linked into the new one before the swap, so no byte is copied and nothing qs did
    /// not write is deleted). A folder that is not writable is refused. The swap is one
    /// `renameat2(RENAME_EXCHANGE)`: a reader, or a kill at any moment, sees the old folder or the
    /// new one, never a mix. When `body` throws, the temporary folder is removed.
    package static func createFolder(
        at path: String, overwrite: Bool = false, protecting: [String] = [], _ body: (String) throws -> Void
    ) throws {
        try refuseOverwriting(path, protecting: protecting)
        try refuseWorkingFolder(path)
        let fileManager = FileManager.default
        let exists: Bool
        switch FileAccess.kind(path) {
        case .missing: exists = false
        case .directory: exists = true
        case .regular, .other: throw EngineError(path: path, "exists and is not a folder")
        }
        if exists && !overwrite {
            throw EngineError(path: path, "already exists; overwrite it (the model files are replaced, its other files kept) or choose another name")
        }
        if exists && !isWritable(path) { throw EngineError(path: path, "is read-only; make it writable to overwrite it, or choose another name") }
        let parent = parentFolder(of: path)
        if FileAccess.kind(parent) == .missing {
            do {
                try fileManager.createDirectory(atPath: parent, withIntermediateDirectories: true)
            } catch {
                throw EngineError(path: parent, "cannot create folder: \(error.localizedDescription)")
            }
        }
        removeStaleTemporaries(of: path)
        let temporary = temporarySibling(of: path)
        guard mkdir(temporary, 0o755) == 0 else { throw EngineError(path: path, "cannot create a folder next to it: \(errorText())") }
        do {
            try body(temporary)
            if exists {
                try linkEntries(from: path, into: temporary)
                try syncDirectory(temporary)
                guard qs_exchange_paths(temporary, path) == 0 else {
                    throw EngineError(path: path, "cannot swap the new folder into place: \(errorText())")
                }
                // The old folder is now at the temporary name; its files live on in the new one.
                try? fileManager.removeItem(atPath: temporary)
            } else {
                try syncDirectory(temporary)
                guard rename(temporary, path) == 0 else { throw EngineError(path: path, "cannot rename the new folder into place: \(errorText())") }
            }
            try syncDirectory(parent)
        } catch {
            try? fileManager.removeItem(atPath: temporary)
            throw error
        }
    }

    /// Whether the folder may be written: permitted to this process, and not marked read-only
    /// (no write bit at all), which root could otherwise ignore.
    static func isWritable(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        return access(path, W_OK) == 0 && (info.st_mode & 0o222) != 0
    }

    /// Refuses to replace the working folder or a folder above it: the process would be left in
    /// the folder that was swapped out.
    static func refuseWorkingFolder(_ path: String) throws {
        let target = resolved(path)
        let working = resolved(FileManager.default.currentDirectoryPath)
        if working == target || working.hasPrefix(target == "/" ? "/" : target + "/") {
            throw EngineError(path: path, "is the current folder or one above it; write into a new folder instead")
        }
    }

    /// Hard-links every entry of `old` that `new` does not have into `new`, folders entry by
    /// entry, so the swap keeps them.
    static func linkEntries(from old: String, into new: String) throws {
        let fileManager = FileManager.default
        let entries: [String]
        do {
            entries = try fileManager.contentsOfDirectory(atPath: old)
        } catch {
            throw EngineError(path: old, "cannot list the folder: \(error.localizedDescription)")
        }
        for name in entries {
            let source = (old as NSString).appendingPathComponent(name)
            let target = (new as NSString).appendingPathComponent(name)
            var info = stat()
            guard lstat(source, &info) == 0 else { throw EngineError(path: source, "cannot read: \(errorText())") }
            if (info.st_mode & S_IFMT) == S_IFDIR {
                var existing = stat()
                if lstat(target, &existing) == 0 {
                    if (existing.st_mode & S_IFMT) == S_IFDIR { try linkEntries(from: source, into: target) }
                    continue
                }
                guard mkdir(target, info.st_mode & 0o7777) == 0 else { throw EngineError(path: target, "cannot create: \(errorText())") }
                try linkEntries(from: source, into: target)
            } else {
                var existing = stat()
                if lstat(target, &existing) == 0 { continue }
                guard linkat(AT_FDCWD, source, AT_FDCWD, target, 0) == 0 else {
                    throw EngineError(path: source, "cannot keep it in the new folder (hard link failed: \(errorText())); nothing was changed")
                }
            }
        }
    }

    /// Removes the temporaries of `path` (files or folders) that writes left when their process
    /// was killed: hidden siblings named by `temporarySibling` whose process is gone.
    package static func removeStaleTemporaries(of path: String) {
        let parent = parentFolder(of: path)
        let prefix = ".\((path as NSString).lastPathComponent).qs-tmp-"
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: parent) else { return }
        for name in entries where name.hasPrefix(prefix) {
            guard let pid = Int32(name.dropFirst(prefix.count).prefix { $0 != "-" }), pid > 0 else { continue }
            if kill(pid, 0) == 0 || errno != ESRCH { continue }
            try? FileManager.default.removeItem(atPath: (parent as NSString).appendingPathComponent(name))
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
        AtomicWrite.removeStaleTemporaries(of: destination)
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
