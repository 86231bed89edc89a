@testable import Bridge
import Glibc
import System
import Testing

@Suite struct WriteQueueTests {
    /// A non-blocking socket pair with a small send buffer, so writes come up short.
    private func socketPair() -> (writer: Int32, reader: Int32) {
        var fds: [Int32] = [0, 0]
        socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds)
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        var size: Int32 = 4096
        setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        return (fds[0], fds[1])
    }

    private func drain(_ fd: Int32) -> [UInt8] {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return result }
            result += buffer[0..<n]
        }
    }

    @Test func partialWritesResumeAtTheRightOffset() throws {
        let (writer, reader) = socketPair()
        defer { close(writer); close(reader) }
        let iov = UnsafeMutablePointer<iovec>.allocate(capacity: 4)
        defer { iov.deallocate() }

        // Three buffers, 300 KB in all: far more than the socket takes at once.
        let parts = (0..<3).map { part in (0..<100_000).map { UInt8(truncatingIfNeeded: $0 * 7 + part) } }
        var queue = WriteQueue()
        for part in parts { queue.append(OutboundBuffer(part)) }
        #expect(queue.pendingBytes == 300_000)

        var received: [UInt8] = []
        var blockedOnce = false
        for _ in 0..<10_000 {
            let result = try queue.flush(to: writer, scratch: iov, maxBatch: 2)
            received += drain(reader)
            if case .blocked = result { blockedOnce = true } else { break }
        }
        received += drain(reader)
        #expect(blockedOnce)
        #expect(queue.isEmpty)
        #expect(queue.pendingBytes == 0)
        #expect(received == parts.flatMap { $0 })
    }

    @Test func oneSharedBufferServesManyQueues() throws {
        let shared = OutboundBuffer(Array("shared frame".utf8))
        var queues = [WriteQueue](repeating: WriteQueue(), count: 3)
        for index in queues.indices { queues[index].append(shared) }
        let iov = UnsafeMutablePointer<iovec>.allocate(capacity: 4)
        defer { iov.deallocate() }
        for index in queues.indices {
            let (writer, reader) = socketPair()
            defer { close(writer); close(reader) }
            _ = try queues[index].flush(to: writer, scratch: iov, maxBatch: 4)
            #expect(drain(reader) == Array("shared frame".utf8))
        }
    }

    @Test func writeToAClosedPeerThrows() {
        let (writer, reader) = socketPair()
        close(reader)
        defer { close(writer) }
        signal(SIGPIPE, SIG_IGN)
        let iov = UnsafeMutablePointer<iovec>.allocate(capacity: 1)
        defer { iov.deallocate() }
        var queue = WriteQueue()
        queue.append(OutboundBuffer([1, 2, 3]))
        #expect(throws: SystemError.self) { try queue.flush(to: writer, scratch: iov, maxBatch: 1) }
    }
}
