import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Unpacks wheels (zip) and sdists (tar.gz) safely: every entry must land inside the target
/// folder (no absolute paths, no `..`, no links or devices), and the target appears only when
/// the whole archive has been written, so a failure leaves nothing behind.
package enum Unpacker {
    /// Unpacks the zip file `archive` into the folder `into`, which must not exist yet.
    package static func unpackZip(_ archive: String, into target: String) throws {
        try staged(target) { root in try ZipArchive(path: archive).extract(into: root) }
    }

    /// Unpacks the gzip-compressed tar file `archive` into the folder `into`, which must not
    /// exist yet.
    package static func unpackTarGz(_ archive: String, into target: String) throws {
        try staged(target) { root in try TarGzArchive(path: archive).extract(into: root) }
    }

    /// Runs `body` on a fresh hidden sibling of `target`, then renames it to `target`; on any
    /// error the sibling is removed and `target` is left untouched.
    static func staged(_ target: String, _ body: (ExtractionRoot) throws -> Void) throws {
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        if fileManager.fileExists(atPath: target, isDirectory: &isDirectory) {
            throw EngineError(path: target, "already exists; remove it first to unpack again")
        }
        let url = URL(fileURLWithPath: target).standardizedFileURL
        let parent = url.deletingLastPathComponent().path
        do {
            try fileManager.createDirectory(atPath: parent, withIntermediateDirectories: true)
        } catch {
            throw EngineError(path: parent, "cannot create folder: \(error.localizedDescription)")
        }
        var template = Array("\(parent)/.\(url.lastPathComponent).partial-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw EngineError(path: parent, "cannot create a temporary folder: \(String(cString: strerror(errno)))")
        }
        let staging = String(cString: made)
        do {
            try body(ExtractionRoot(path: staging))
            // mkdtemp makes the folder private; the cache is as readable as any folder.
            let mask = umask(0o022)
            umask(mask)
            chmod(staging, 0o777 & ~mask & 0o755)
            guard rename(staging, url.path) == 0 else {
                throw EngineError(path: target, "cannot move the unpacked folder into place: \(String(cString: strerror(errno)))")
            }
        } catch {
            try? fileManager.removeItem(atPath: staging)
            throw error
        }
    }
}

/// A folder being filled from an archive. Paths come from the archive and are checked here
/// before anything is created, so no entry can reach outside the folder.
struct ExtractionRoot {
    /// The folder's absolute path.
    let path: String

    /// The components of an archive entry's name, after dropping empty and `.` parts, or an
    /// error naming the entry when it is absolute or climbs with `..`.
    static func safeComponents(_ name: String, archive: String) throws -> [Substring] {
        if name.hasPrefix("/") {
            throw EngineError(path: archive, subject: name, "unsafe entry: absolute path")
        }
        if name.utf8.contains(0) {
            throw EngineError(path: archive, subject: name, "unsafe entry: NUL in its name")
        }
        let parts = name.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        if parts.contains("..") {
            throw EngineError(path: archive, subject: name, "unsafe entry: '..' in its path would leave the target folder")
        }
        return parts
    }

    /// Creates the folder for `components` (and its parents) under the root.
    func makeDirectory(_ components: some Collection<Substring>, entry: String, archive: String) throws {
        var current = path
        for part in components {
            current += "/" + part
            if mkdir(current, 0o755) != 0 {
                let code = errno
                var info = stat()
                guard code == EEXIST, lstat(current, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
                    throw EngineError(path: archive, subject: entry, "cannot create folder \(current): \(String(cString: strerror(code)))")
                }
            }
        }
    }

    /// Creates (or truncates) the regular file for `components`, creating its folders, and
    /// lets `body` fill it through its descriptor. Never follows a link; always closes.
    func writeFile(
        _ components: [Substring], executable: Bool, entry: String, archive: String,
        _ body: (Int32) throws -> Void
    ) throws {
        guard let last = components.last else {
            throw EngineError(path: archive, subject: entry, "file entry has an empty name")
        }
        try makeDirectory(components.dropLast(), entry: entry, archive: archive)
        let filePath = path + "/" + components.dropLast().map { $0 + "/" }.joined() + last
        let fd = open(filePath, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, executable ? 0o755 : 0o644)
        guard fd >= 0 else {
            throw EngineError(path: archive, subject: entry, "cannot create \(filePath): \(String(cString: strerror(errno)))")
        }
        do {
            try body(fd)
        } catch {
            close(fd)
            throw error
        }
        if close(fd) != 0 {
            throw EngineError(path: archive, subject: entry, "cannot finish writing: \(String(cString: strerror(errno)))")
        }
    }

    /// Writes all of `bytes` to `fd`, retrying short writes.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, entry: String, archive: String) throws {
        guard var address = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let written = write(fd, address, left)
            if written < 0 {
                if errno == EINTR { continue }
                throw EngineError(path: archive, subject: entry, "cannot write: \(String(cString: strerror(errno)))")
            }
            left -= written
            address += written
        }
    }
}
