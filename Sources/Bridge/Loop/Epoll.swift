import CSystem
import Glibc
import System

/// One epoll instance. Each registration carries a 64-bit token; connections use
/// `(generation << 32) | fd` so an event for a closed fd whose number was reused is recognised and dropped.
struct Epoll {
    let fd: Int32

    init() throws(SystemError) {
        fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard fd >= 0 else { throw SystemError("epoll_create1") }
    }

    static let readable = UInt32(EPOLLIN.rawValue | EPOLLRDHUP.rawValue)
    static let writable = UInt32(EPOLLOUT.rawValue)

    func add(_ target: Int32, events: UInt32, token: UInt64) throws(SystemError) {
        var event = bridge_epoll_event(events, token)
        guard epoll_ctl(fd, EPOLL_CTL_ADD, target, &event) == 0 else { throw SystemError("epoll_ctl(ADD)") }
    }

    func modify(_ target: Int32, events: UInt32, token: UInt64) throws(SystemError) {
        var event = bridge_epoll_event(events, token)
        guard epoll_ctl(fd, EPOLL_CTL_MOD, target, &event) == 0 else { throw SystemError("epoll_ctl(MOD)") }
    }

    func remove(_ target: Int32) {
        epoll_ctl(fd, EPOLL_CTL_DEL, target, nil)
    }

    /// Waits for events; returns how many of `events` were filled. EINTR counts as zero events.
    func wait(_ events: UnsafeMutablePointer<epoll_event>, capacity: Int32, timeoutMs: Int32) -> Int {
        let n = epoll_wait(fd, events, capacity, timeoutMs)
        return n < 0 ? 0 : Int(n)
    }

    static func token(fd: Int32, generation: UInt32) -> UInt64 {
        UInt64(generation) << 32 | UInt64(UInt32(bitPattern: fd))
    }
}
