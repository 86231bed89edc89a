import System
/// Bytes waiting to be written to the socket, in order. Written from the front and
/// compacted only once the written part dominates, so a long pipeline is not copied
/// after every partial write.
struct OutputBuffer {
    private var bytes: [UInt8] = []
    private var start = 0

    var count: Int { bytes.count - start }
    var isEmpty: Bool { start == bytes.count }

    mutating func append(_ more: [UInt8]) {
        bytes.append(contentsOf: more)
    }

    /// Writes as much as the stream takes now; returns how many bytes it wrote. Unwritten bytes stay
    /// at the front, so a TLS write that must be repeated is repeated with the same bytes.
    mutating func write(to stream: RedisStream) throws(RedisDisconnectReason) -> Int {
        var written = 0
        while !isEmpty {
            let result = bytes.withUnsafeBytes { all in
                Result { () throws(RedisDisconnectReason) in try stream.write(UnsafeRawBufferPointer(rebasing: all[start...])) }
            }
            guard case .done(let count) = try result.get() else { break }
            start += count
            written += count
        }
        if isEmpty {
            removeAll()
        } else if start > 64 * 1024 && start > bytes.count / 2 {
            bytes.removeFirst(start)
            start = 0
        }
        return written
    }

    mutating func removeAll() {
        bytes.removeAll(keepingCapacity: bytes.capacity <= 64 * 1024)
        start = 0
    }
}
