import Glibc
import Synchronization

extension RedisClient {
    /// Sends a command and blocks the calling thread until its reply, for tests, tools and
    /// the command line; never on an event loop, and never on the client's own thread
    /// (it would wait for itself).
    public func sendAndWait(_ arguments: [any RedisArgument], timeoutMs: Int = 5000) throws(RedisError) -> RESPValue {
        precondition(!isOnClientThread, "sendAndWait on the client's own thread would wait forever")
        let waiter = ReplyWaiter()
        try send(arguments) { waiter.fulfil($0) }
        guard let result = waiter.wait(timeoutMs: timeoutMs) else { throw .timedOut(afterMs: timeoutMs) }
        return try result.get()
    }
}

/// One reply handed from the client's thread to a thread that blocks for it.
private final class ReplyWaiter: Sendable {
    private let result = Mutex<Result<RESPValue, RedisError>?>(nil)
    private let semaphore = Semaphore()

    func fulfil(_ value: Result<RESPValue, RedisError>) {
        result.withLock { $0 = value }
        semaphore.signal()
    }

    func wait(timeoutMs: Int) -> Result<RESPValue, RedisError>? {
        guard semaphore.wait(timeoutMs: timeoutMs) else { return nil }
        return result.withLock { $0 }
    }
}

/// A POSIX semaphore on the heap (sem_t must not move once initialised).
private final class Semaphore: @unchecked Sendable {
    // sem_post and sem_timedwait are safe from any thread; the pointer itself never changes.
    private let handle = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)

    init() { sem_init(handle, 0, 0) }

    deinit {
        sem_destroy(handle)
        handle.deallocate()
    }

    func signal() { sem_post(handle) }

    /// False when `timeoutMs` passed first.
    func wait(timeoutMs: Int) -> Bool {
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        let nanoseconds = Int(deadline.tv_nsec) + (timeoutMs % 1000) * 1_000_000
        deadline.tv_sec += timeoutMs / 1000 + nanoseconds / 1_000_000_000
        deadline.tv_nsec = nanoseconds % 1_000_000_000
        while sem_timedwait(handle, &deadline) != 0 {
            if errno != EINTR { return false }
        }
        return true
    }
}
