import CSystem
import Glibc
import Synchronization
import System

/// One thread, one epoll instance, one listening socket (SO_REUSEPORT) — two with TLS on — and
/// every connection they accepted. A turn is: wait → handle readiness → run posted tasks → expire deadlines →
/// flush every connection that queued output (one `writev` each) → close what asked to close.
/// Connections are touched by their loop only, so nothing on the per-connection path takes a lock.
public final class EventLoop: @unchecked Sendable {
    public let index: Int
    unowned let group: LoopGroup
    let server: ServerContext
    let epoll: Epoll
    private let wake: WakeSignal
    private let timerFD: Int32
    var listenFD: Int32 = -1
    var tlsListenFD: Int32 = -1
    /// Kept open so that at the fd limit (EMFILE) one pending connection can still be accepted
    /// and closed, instead of spinning on a listener that stays readable.
    var spareFD: Int32 = -1
    /// While at the fd limit with nothing to shed: the tick accepting resumes.
    var acceptPausedUntil: UInt32?

    let connections: ConnectionTable
    var nextGeneration: UInt32 = 1
    private var wheel: TimerWheel
    /// Ticks of `tickMs` since the loop started: the clock of every deadline.
    private(set) var now: UInt32 = 0
    static let tickMs = 100
    private let startNanos: UInt64

    /// Connections that queued output this turn, flushed once before the loop sleeps.
    private var pendingFlush: [Connection] = []
    /// Connections to close at the end of the turn, never in the middle of one.
    private var pendingClose: [Connection] = []
    private var expired: [Connection] = []
    /// Called on every tick, on this loop's thread (see `onTick`).
    private var tickHandlers: [(EventLoop) -> Void] = []

    /// One read buffer per loop: an idle connection holds none.
    let readBuffer: UnsafeMutableRawBufferPointer
    static let readBufferSize = 64 * 1024
    let iovecs: UnsafeMutablePointer<iovec>
    static let maxIOVecs = 64
    /// Where a TLS connection's queued frames are gathered for one `SSL_write` (four full records);
    /// allocated by the first TLS connection's first flush.
    private(set) lazy var tlsScratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)

    private let tasks = Mutex<[@Sendable (EventLoop) -> Void]>([])
    /// The loop queued a task for itself this turn: run at the end of the turn, with no wake-up
    /// (an eventfd write and read and one more epoll_wait per presence answer, otherwise).
    private var tasksQueuedHere = false
    /// Turns (epoll_wait returns) so far: tells work done in one turn from work done in the next.
    private(set) var turn: UInt64 = 0
    private var threadID: pthread_t?
    private(set) var isDraining = false

    init(index: Int, group: LoopGroup, server: ServerContext) throws(SystemError) {
        self.index = index
        self.group = group
        self.server = server
        epoll = try Epoll()
        wake = try WakeSignal()
        timerFD = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK | TFD_CLOEXEC))
        guard timerFD >= 0 else { throw SystemError("timerfd_create") }
        connections = ConnectionTable(capacity: min(ServerConfig.openFileLimit, 1 << 16))
        startNanos = MonotonicClock.nanoseconds
        wheel = TimerWheel(now: 0)
        readBuffer = .allocate(byteCount: Self.readBufferSize, alignment: 16)
        iovecs = .allocate(capacity: Self.maxIOVecs)
        spareFD = open("/dev/null", O_RDONLY | O_CLOEXEC)

        try epoll.add(wake.fd, events: Epoll.readable, token: Self.wakeToken)
        try epoll.add(timerFD, events: Epoll.readable, token: Self.timerToken)
        var interval = itimerspec()
        interval.it_interval.tv_nsec = Self.tickMs * 1_000_000
        interval.it_value.tv_nsec = Self.tickMs * 1_000_000
        guard timerfd_settime(timerFD, 0, &interval, nil) == 0 else { throw SystemError("timerfd_settime") }
    }

    // Tokens below 2^32 with generation 0 are the loop's own fds; connections start at generation 1.
    private static let wakeToken: UInt64 = 1
    private static let timerToken: UInt64 = 2
    static let listenToken: UInt64 = 3
    static let tlsListenToken: UInt64 = 4

    // MARK: Cross-thread tasks

    /// Runs `task` on this loop's thread: at once when called from it, otherwise at its next turn.
    public func execute(_ task: @escaping @Sendable (EventLoop) -> Void) {
        if inLoop {
            task(self)
            return
        }
        enqueue(task)
    }

    /// Runs `task` on this loop's thread at its next turn, after every task queued before it, even
    /// when called from the loop itself: for work that must keep the order it was decided in
    /// (member events and the answers that go with them).
    public func enqueue(_ task: @escaping @Sendable (EventLoop) -> Void) {
        let wasEmpty = tasks.withLock { queue in
            queue.append(task)
            return queue.count == 1
        }
        guard wasEmpty else { return }
        if inLoop {
            tasksQueuedHere = true
        } else {
            wake.wake()
        }
    }

    public var inLoop: Bool {
        guard let threadID else { return false }
        return pthread_equal(threadID, pthread_self()) != 0
    }

    private func runTasks() {
        wake.drain()
        runQueuedTasks()
    }

    private func runQueuedTasks() {
        let batch = tasks.withLock { queue in
            let taken = queue
            queue = []
            return taken
        }
        for task in batch { task(self) }
    }

    // MARK: The loop

    func run() {
        threadID = pthread_self()
        let capacity: Int32 = 256
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: Int(capacity))
        defer { events.deallocate() }
        while !group.isStopped {
            let count = epoll.wait(events, capacity: capacity, timeoutMs: 1000)
            turn &+= 1
            for i in 0..<count {
                var event = events[i]
                dispatch(token: bridge_epoll_event_data(&event), events: bridge_epoll_event_events(&event))
            }
            endTurn()
        }
    }

    private func dispatch(token: UInt64, events: UInt32) {
        switch token {
        case Self.wakeToken: runTasks()
        case Self.timerToken: expireDeadlines()
        case Self.listenToken: acceptConnections(from: listenFD, tls: false)
        case Self.tlsListenToken: acceptConnections(from: tlsListenFD, tls: true)
        default:
            let fd = Int32(truncatingIfNeeded: token & 0xFFFF_FFFF)
            let generation = UInt32(truncatingIfNeeded: token >> 32)
            // A stale event: the fd was closed (and maybe reused) earlier in this turn.
            guard let connection = connections[fd], connection.generation == generation else { return }
            if events & UInt32(EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 {
                connection.readable()
            }
            if events & UInt32(EPOLLOUT.rawValue) != 0, !connection.isClosed {
                connection.flush()
            }
        }
    }

    /// Flushes and closes what the turn left, then runs the tasks the loop queued for itself
    /// (which may take along tasks other threads queued meanwhile: those find this turn's closed
    /// connections gone, as in any later turn) and flushes and closes what they left.
    private func endTurn() {
        flushAndRelease()
        guard tasksQueuedHere else { return }
        tasksQueuedHere = false
        runQueuedTasks()
        // Tasks those queued run next turn, which the wake-up makes come at once.
        if tasksQueuedHere {
            tasksQueuedHere = false
            wake.wake()
        }
        flushAndRelease()
    }

    private func flushAndRelease() {
        // Flushing may close (write error), closing never queues output: flush first.
        while !pendingFlush.isEmpty {
            let batch = pendingFlush
            pendingFlush = []
            for connection in batch {
                connection.awaitingFlush = false
                if !connection.isClosed { connection.flush() }
            }
        }
        if !pendingClose.isEmpty {
            let batch = pendingClose
            pendingClose = []
            for connection in batch { release(connection) }
        }
    }

    // MARK: Connection bookkeeping (called by Connection)

    func needsFlush(_ connection: Connection) {
        pendingFlush.append(connection)
    }

    func needsClose(_ connection: Connection) {
        pendingClose.append(connection)
    }

    /// Watches the connection for writability (only while output is blocked) and for input
    /// (until the peer has closed its side).
    func setWritableInterest(_ connection: Connection, _ on: Bool) {
        var events: UInt32 = connection.readingStopped ? 0 : Epoll.readable
        if on { events |= Epoll.writable }
        try? epoll.modify(connection.fd, events: events, token: Epoll.token(fd: connection.fd, generation: connection.generation))
    }

    func schedule(_ connection: Connection, afterSeconds seconds: Double) {
        wheel.schedule(connection, at: now &+ Self.ticks(seconds), in: connections)
    }

    func schedule(_ connection: Connection, atTick tick: UInt32) {
        wheel.schedule(connection, at: tick, in: connections)
    }

    /// Whole ticks covering `seconds`, at least one.
    static func ticks(_ seconds: Double) -> UInt32 {
        UInt32(min(Double(UInt32.max / 2), max(1, (seconds * 1000 / Double(tickMs)).rounded(.up))))
    }

    /// The `Date` header value, formatted at most once per second per loop.
    var httpDate: String {
        let second = time(nil)
        if second != cachedDateSecond {
            cachedDateSecond = second
            cachedDate = HTTPResponse.httpDate(epochSeconds: Int(second))
        }
        return cachedDate
    }
    private var cachedDateSecond: time_t = 0
    private var cachedDate = ""

    func cancelDeadline(_ connection: Connection) {
        wheel.cancel(connection, in: connections)
    }

    private func release(_ connection: Connection) {
        wheel.cancel(connection, in: connections)
        epoll.remove(connection.fd)
        connections.remove(connection)
        close(connection.fd)
        if connection.counted { group.releaseConnection() }
        Log.debug("closed", conn: connection.id)
    }

    // MARK: Time

    private func expireDeadlines() {
        var expirations: UInt64 = 0
        _ = Glibc.read(timerFD, &expirations, 8)
        now = UInt32(truncatingIfNeeded: (MonotonicClock.nanoseconds - startNanos) / UInt64(Self.tickMs * 1_000_000))
        resumeAcceptingIfDue()
        wheel.advance(to: now, in: connections, expired: &expired)
        for connection in expired where !connection.isClosed {
            connection.deadlineReached()
        }
        expired.removeAll(keepingCapacity: true)
        for handler in tickHandlers { handler(self) }
    }

    /// Runs `handler` on this loop every tick (`tickMs`), for work that is due by time rather
    /// than by I/O. Call it on the loop's thread (from an `execute` task).
    public func onTick(_ handler: @escaping (EventLoop) -> Void) {
        precondition(inLoop, "onTick must be called on the loop's thread")
        tickHandlers.append(handler)
    }

    /// Seconds since the loop started, at the current tick's resolution.
    public var seconds: Double { Double(now) * Double(Self.tickMs) / 1000 }

    // MARK: Draining

    /// SIGTERM: stop accepting, ask every connection to finish (WebSocket: close 1001).
    func beginDrain() {
        isDraining = true
        for listener in [listenFD, tlsListenFD] where listener >= 0 {
            epoll.remove(listener)
            close(listener)
        }
        listenFD = -1
        tlsListenFD = -1
        for connection in connections.all where !connection.isClosed {
            connection.drain()
        }
        endTurn()
    }
}
