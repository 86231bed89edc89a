import CSystem
import Glibc

/// An eventfd that other threads write to wake a thread out of `poll` or `epoll_wait`.
/// Shared by the waking side and the woken thread; closed when both have let go of it.
public final class WakeSignal: Sendable {
    public let fd: Int32

    public init() throws(SystemError) {
        let fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard fd >= 0 else { throw SystemError("eventfd") }
        self.fd = fd
    }

    deinit { Glibc.close(fd) }

    public func wake() {
        var one: UInt64 = 1
        // A full counter (EAGAIN) is already a pending wake-up.
        _ = Glibc.write(fd, &one, 8)
    }

    /// Resets the counter after the fd was reported readable.
    public func drain() {
        var count: UInt64 = 0
        _ = Glibc.read(fd, &count, 8)
    }
}
