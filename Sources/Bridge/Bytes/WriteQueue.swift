import Glibc

/// A connection's unsent output: shared buffers plus how far into the first one the socket got.
/// Holds no memory while empty, so an idle connection pays for nothing here.
struct WriteQueue {
    private var buffers: [OutboundBuffer] = []
    private var head = 0
    private var headOffset = 0
    /// Bytes still to write, for the slow-consumer limit.
    private(set) var pendingBytes = 0

    var isEmpty: Bool { pendingBytes == 0 && head == buffers.count }

    mutating func append(_ buffer: OutboundBuffer) {
        buffers.append(buffer)
        pendingBytes += buffer.count
    }

    enum FlushResult {
        case drained
        case blocked
    }

    /// Writes as much as the socket takes, in batches of up to `maxBatch` buffers per `writev`.
    /// A short write leaves the rest queued with the offset of the first unwritten byte.
    mutating func flush(to fd: Int32, scratch: UnsafeMutablePointer<iovec>, maxBatch: Int) throws(SystemError) -> FlushResult {
        while head < buffers.count {
            var count = 0
            var index = head
            while index < buffers.count && count < maxBatch {
                let buffer = buffers[index]
                let skip = index == head ? headOffset : 0
                scratch[count] = iovec(iov_base: UnsafeMutableRawPointer(mutating: buffer.base + skip), iov_len: buffer.count - skip)
                count += 1
                index += 1
            }
            switch try Syscall.writev(fd, scratch, count: Int32(count)) {
            case .wouldBlock:
                return .blocked
            case .done(let written):
                consume(written)
                if head < buffers.count && written == 0 { return .blocked }
            }
        }
        return .drained
    }

    private mutating func consume(_ written: Int) {
        var left = written
        pendingBytes -= written
        while left > 0 {
            let remaining = buffers[head].count - headOffset
            if left >= remaining {
                left -= remaining
                head += 1
                headOffset = 0
            } else {
                headOffset += left
                left = 0
            }
        }
        if head == buffers.count {
            buffers = []
            head = 0
        }
    }

    mutating func removeAll() {
        buffers = []
        head = 0
        headOffset = 0
        pendingBytes = 0
    }
}
