import CZlib

/// zlib decompression of one mapped input, pulled a buffer at a time: raw deflate (a zip
/// entry) or gzip (one or more members, as in a `.tar.gz`).
final class InflateStream {
    /// Which framing the compressed bytes use.
    enum Framing {
        case raw, gzip
    }

    private var stream = z_stream()
    private let input: UnsafeRawBufferPointer
    private let framing: Framing
    private let archive: String
    private let entry: String?
    /// Bytes of `input` handed to zlib so far.
    private var fed = 0
    /// Whether the compressed stream has ended.
    private(set) var finished = false

    /// Starts decompressing `input`; `archive` and `entry` name the data in errors.
    init(input: UnsafeRawBufferPointer, framing: Framing, archive: String, entry: String? = nil) throws {
        self.input = input
        self.framing = framing
        self.archive = archive
        self.entry = entry
        let status = qs_inflate_init2(&stream, framing == .raw ? -15 : 15 + 16)
        guard status == Z_OK else {
            throw EngineError(path: archive, subject: entry, "cannot start zlib (status \(status))")
        }
    }

    deinit {
        inflateEnd(&stream)
    }

    /// Fills `buffer` from the decompressed stream and returns how many bytes it wrote; fewer
    /// than `buffer.count` only once the stream has ended.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress else { return 0 }
        var produced = 0
        while produced < buffer.count, !finished {
            if stream.avail_in == 0, fed < input.count {
                let chunk = min(input.count - fed, 1 << 30)
                stream.next_in = UnsafeMutablePointer(mutating: (input.baseAddress! + fed).assumingMemoryBound(to: Bytef.self))
                stream.avail_in = uInt(chunk)
                fed += chunk
            }
            let room = min(buffer.count - produced, 1 << 30)
            stream.next_out = (base + produced).assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(room)
            let status = inflate(&stream, Z_NO_FLUSH)
            produced += room - Int(stream.avail_out)
            switch status {
            case Z_OK:
                continue
            case Z_STREAM_END:
                let inputLeft = Int(stream.avail_in) + (input.count - fed)
                if framing == .gzip, inputLeft > 0 {
                    inflateReset(&stream)
                } else {
                    finished = true
                }
            case Z_BUF_ERROR where stream.avail_in == 0 && fed == input.count:
                throw EngineError(path: archive, subject: entry, "archive is corrupt: the compressed data ends early")
            case Z_BUF_ERROR:
                continue
            default:
                let reason = stream.msg.map { String(cString: $0) } ?? "status \(status)"
                throw EngineError(path: archive, subject: entry, "archive is corrupt: \(reason)")
            }
        }
        return produced
    }
}
