import CSystem
import Glibc

/// An eventfd that other threads write to wake the connection thread out of `poll`.
/// Shared by the caller side and the thread; closed when both have let go of it.
final class WakeSignal: Sendable {
    let fd: Int32

    init() throws(SystemCallError) {
        let fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard fd >= 0 else { throw SystemCallError("eventfd") }
        self.fd = fd
    }

    deinit { Glibc.close(fd) }

    func wake() {
        var one: UInt64 = 1
        // A full counter (EAGAIN) is already a pending wake-up.
        _ = Glibc.write(fd, &one, 8)
    }

    /// Resets the counter after `poll` reported the fd readable.
    func drain() {
        var count: UInt64 = 0
        _ = Glibc.read(fd, &count, 8)
    }
}
