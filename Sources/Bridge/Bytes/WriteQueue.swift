import Glibc
import System

/// A connection's unsent output: shared buffers plus how far into the first one the socket got.
/// Holds no memory while empty, so an idle connection pays for nothing here.
///
/// `cost` is what the queue really pins, not only its payload bytes: every queued buffer also
/// costs its array slot, the buffer object and the allocator's rounding. Counting that overhead is
/// what bounds a flood of tiny frames (1-byte echoes, pongs) like a few large ones.
struct WriteQueue {
    /// Memory one queued buffer costs beyond its bytes, rounded up: a 16-byte array slot (with
    /// growth slack), the 32-byte object in a 48-byte allocation, and the payload's own allocation,
    /// at least 32 bytes.
    static let bufferOverhead = 128

    private var buffers: [OutboundBuffer] = []
    private var head = 0
    private var headOffset = 0
    /// Answers to pings, not yet placed in the queue, at most `maxPongs`: RFC 6455 §5.5.3 lets an
    /// endpoint answer only the most recent pings, so a ping flood holds a constant. More than one
    /// is kept because clients (and Autobahn 2.10) send a few pings at once and expect every answer.
    private var pongs: [OutboundBuffer] = []
    static let maxPongs = 16
    /// Bytes still to write.
    private(set) var pendingBytes = 0

    var isEmpty: Bool { pendingBytes == 0 && head == buffers.count && pongs.isEmpty }

    /// Bytes still to write plus the overhead of every buffer holding them.
    var cost: Int {
        pendingBytes + (buffers.count - head + pongs.count) * Self.bufferOverhead
    }

    mutating func append(_ buffer: OutboundBuffer) {
        buffers.append(buffer)
        pendingBytes += buffer.count
    }

    /// Adds a pong to send next; past `maxPongs` unsent ones, the oldest is dropped.
    mutating func addPong(_ buffer: OutboundBuffer) {
        if pongs.count == Self.maxPongs { pendingBytes -= pongs.removeFirst().count }
        pongs.append(buffer)
        pendingBytes += buffer.count
    }

    enum FlushResult {
        case drained
        case blocked
    }

    /// Writes as much as the socket takes, in batches of up to `maxBatch` buffers per `writev`.
    /// A short write leaves the rest queued with the offset of the first unwritten byte.
    mutating func flush(to fd: Int32, scratch: UnsafeMutablePointer<iovec>, maxBatch: Int) throws(SystemError) -> FlushResult {
        placePongs()
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

    /// The first `length` unsent bytes (at most `pendingBytes`) as one span: in place when one
    /// buffer holds them, else gathered into `scratch` (at least `length` bytes). For TLS, which
    /// takes one contiguous buffer per `SSL_write`.
    func withFirstBytes<Result>(_ length: Int, scratch: UnsafeMutableRawBufferPointer,
                                _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        let first = buffers[head]
        if first.count - headOffset >= length {
            return body(UnsafeRawBufferPointer(start: first.base + headOffset, count: length))
        }
        var gathered = 0
        var index = head
        while gathered < length {
            let buffer = buffers[index]
            let skip = index == head ? headOffset : 0
            let take = min(buffer.count - skip, length - gathered)
            (scratch.baseAddress! + gathered).copyMemory(from: buffer.base + skip, byteCount: take)
            gathered += take
            index += 1
        }
        return body(UnsafeRawBufferPointer(start: scratch.baseAddress, count: length))
    }

    /// Puts the pongs ahead of every frame not yet begun: a control frame may go between any two
    /// frames, and they then leave with the next write instead of after a backlog.
    mutating func placePongs() {
        guard !pongs.isEmpty else { return }
        if headOffset == 0 && head >= pongs.count {
            head -= pongs.count
            buffers.replaceSubrange(head..<head + pongs.count, with: pongs)  // slots of buffers already written
        } else {
            buffers.insert(contentsOf: pongs, at: headOffset == 0 ? head : head + 1)
        }
        pongs = []
    }

    /// Drops the first `written` bytes, which the socket (or TLS) took.
    mutating func consume(_ written: Int) {
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
        // Release written buffers: a reader that keeps up only partly must not pin all it was sent.
        if head == buffers.count {
            buffers = []
            head = 0
        } else if head >= 64 && head * 2 >= buffers.count {
            buffers.removeFirst(head)
            head = 0
        }
    }

    mutating func removeAll() {
        buffers = []
        head = 0
        headOffset = 0
        pongs = []
        pendingBytes = 0
    }
}
