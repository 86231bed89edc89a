import CSystem
import Glibc

/// The outcome of a non-blocking call: it either did something or would have blocked.
enum IOResult<Value> {
    case done(Value)
    case wouldBlock
}

/// Thin wrappers over the calls the loop makes on every turn. EINTR is retried here so no caller
/// has to; EAGAIN becomes `.wouldBlock`; anything else is thrown with the call's name.
enum Syscall {
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return .done(n) }
            switch errno {
            case EINTR: continue
            case EAGAIN: return .wouldBlock
            default: throw SystemError("read")
            }
        }
    }

    static func writev(_ fd: Int32, _ iov: UnsafePointer<iovec>, count: Int32) throws(SystemError) -> IOResult<Int> {
        while true {
            let n = Glibc.writev(fd, iov, count)
            if n >= 0 { return .done(n) }
            switch errno {
            case EINTR: continue
            case EAGAIN: return .wouldBlock
            default: throw SystemError("writev")
            }
        }
    }

    static func accept(_ listener: Int32) throws(SystemError) -> IOResult<Int32> {
        while true {
            let fd = bridge_accept4(listener, Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue))
            if fd >= 0 { return .done(fd) }
            switch errno {
            case EINTR, ECONNABORTED: continue
            case EAGAIN: return .wouldBlock
            default: throw SystemError("accept4")
            }
        }
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws(SystemError) {
        var value = value
        if setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            throw SystemError("setsockopt")
        }
    }
}
