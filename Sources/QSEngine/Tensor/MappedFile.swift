#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory. Tensors refer into it by offset, so opening a
/// multi-GB checkpoint touches no tensor data until a kernel asks for it.
package final class MappedFile: @unchecked Sendable {
    /// The path the file was opened from.
    package let path: String
    /// The mapped bytes (empty for an empty file).
    package let bytes: UnsafeRawBufferPointer

    package init(path: String) throws {
        self.path = path
        let fd = try FileAccess.openRegular(path, expected: "a model file")
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw EngineError(path: path, "cannot stat: \(String(cString: strerror(errno)))") }
        let size = Int(info.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let address, address != MAP_FAILED else {
            throw EngineError(path: path, "cannot map \(size) bytes: \(String(cString: strerror(errno)))")
        }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }

    /// The number of bytes in the file.
    package var count: Int { bytes.count }

    /// The bytes in `offset ..< offset + length`, or nil when that range is not inside the file.
    package func slice(offset: Int, length: Int) -> UnsafeRawBufferPointer? {
        guard offset >= 0, length >= 0, offset <= count, length <= count - offset else { return nil }
        if length == 0 { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(rebasing: bytes[offset ..< offset + length])
    }
}
