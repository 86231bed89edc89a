import Glibc
import Synchronization
import System

/// The thread that runs one `ConnectionLoop`. Joined by whoever stops it, or detached when
/// the stop comes from the thread itself (a callback closing its own client).
final class ConnectionThread: Sendable {
    private let id: pthread_t
    private let released = Atomic<Bool>(false)

    /// A closure handed to the new thread through a raw pointer.
    private final class Body {
        let name: String
        let run: () -> Void
        init(name: String, run: @escaping () -> Void) {
            self.name = name
            self.run = run
        }
    }

    init(name: String, run: @escaping () -> Void) throws(SystemError) {
        let body = Unmanaged.passRetained(Body(name: name, run: run)).toOpaque()
        var id = pthread_t()
        let status = pthread_create(&id, nil, { raw in
            let body = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
            nameCurrentThread(body.name)
            body.run()
            return nil
        }, body)
        guard status == 0 else {
            Unmanaged<Body>.fromOpaque(body).release()
            throw SystemError("pthread_create", errno: status)
        }
        self.id = id
    }

    /// Starts a connection for a client or subscriber: `make` builds, around the thread's
    /// wake-up signal, the state the callers share and the session the thread drives.
    static func start<Shared>(url: RedisURL, options: RedisOptions,
                              onEvent: @escaping @Sendable (RedisConnectionEvent) -> Void,
                              _ make: (WakeSignal) -> (shared: Shared, session: ConnectionSession)) throws(RedisError) -> (Shared, ConnectionThread) {
        do throws(SystemError) {
            let wake = try WakeSignal()
            let (shared, session) = make(wake)
            let loop = ConnectionLoop(url: url, options: options, session: session, wake: wake, onEvent: onEvent)
            return (shared, try ConnectionThread(name: options.threadName) { loop.run() })
        } catch {
            throw .startFailed(error.description)
        }
    }

    var isCurrent: Bool { pthread_equal(id, pthread_self()) != 0 }

    /// Waits for the thread to return (or lets it finish on its own when called from it).
    /// Only the first call does anything.
    func waitForExit() {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if isCurrent {
            pthread_detach(id)
        } else {
            pthread_join(id, nil)
        }
    }
}

/// Names the calling thread for `ps -L`, `top -H` and debuggers (the kernel keeps 15 bytes).
/// pthread_setname_np needs _GNU_SOURCE, which the Glibc module lacks; this is what it does.
private func nameCurrentThread(_ name: String) {
    let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}
