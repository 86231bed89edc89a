import CSystem
import Glibc

/// Thin wrappers over the calls the event loops, the Redis connection and the outbox make. EINTR is
/// retried here so no caller has to; on a non-blocking descriptor EAGAIN becomes `.wouldBlock`;
/// anything else is thrown as a `SystemError` naming the call.
public enum Syscall {
    /// Runs `body` until a signal no longer interrupts it. `body` is the call and nothing that
    /// could touch errno after it (a buffer's `withUnsafeBytes` around it is fine): errno is read
    /// as soon as it returns a negative value.
    public static func retrying<Result: SignedInteger>(_ name: String, path: String? = nil,
                                                       _ body: () -> Result) throws(SystemError) -> Result {
        while true {
            let result = body()
            if result >= 0 { return result }
            let code = errno
            if code != EINTR { throw SystemError(name, path: path, errno: code) }
        }
    }

    /// `retrying` for a non-blocking descriptor: EAGAIN is `.wouldBlock`, not a failure.
    public static func nonBlocking<Result: SignedInteger>(_ name: String,
                                                          _ body: () -> Result) throws(SystemError) -> IOResult<Result> {
        while true {
            let result = body()
            if result >= 0 { return .done(result) }
            switch errno {
            case EINTR: continue
            case EAGAIN: return .wouldBlock
            case let code: throw SystemError(name, errno: code)
            }
        }
    }

    /// Reads what is there; `.done(0)` is end of stream.
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try nonBlocking("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    public static func writev(_ fd: Int32, _ iov: UnsafePointer<iovec>, count: Int32) throws(SystemError) -> IOResult<Int> {
        try nonBlocking("writev") { Glibc.writev(fd, iov, count) }
    }

    /// send(2) with MSG_NOSIGNAL: a peer that went away is an EPIPE error, not a SIGPIPE.
    public static func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try nonBlocking("send") { Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Accepts one connection, non-blocking and close-on-exec. A connection reset before it was
    /// accepted (ECONNABORTED) is skipped, like EINTR.
    public static func accept(_ listener: Int32) throws(SystemError) -> IOResult<Int32> {
        while true {
            let fd = bridge_accept4(listener, Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue))
            if fd >= 0 { return .done(fd) }
            switch errno {
            case EINTR, ECONNABORTED: continue
            case EAGAIN: return .wouldBlock
            case let code: throw SystemError("accept4", errno: code)
            }
        }
    }

    public static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws(SystemError) {
        var value = value
        if setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            throw SystemError("setsockopt")
        }
    }
}
