import Synchronization
import System

/// Called once with a command's reply, on the client's connection thread.
public typealias RedisCompletion = @Sendable (Result<RESPValue, RedisError>) -> Void

/// Where callers on any thread leave encoded commands for the connection thread, and the
/// bound on how many bytes may wait unsent (here or in the connection's output buffer).
final class CommandInbox: Sendable {
    struct Command: Sendable {
        let bytes: [UInt8]
        let completion: RedisCompletion
    }

    private enum Mode: Sendable {
        /// Connecting or connected: commands are queued.
        case accepting
        /// Backing off after this failure: commands are refused at once.
        case refusing(RedisDisconnectReason)
        case closed
    }

    private struct State: Sendable {
        var mode = Mode.accepting
        var commands: [Command] = []
        var queuedBytes = 0
        /// Bytes the connection thread holds unsent, as it last reported.
        var unsentBytes = 0
    }

    let maxUnsentBytes: Int
    private let wake: WakeSignal
    private let state = Mutex(State())

    init(maxUnsentBytes: Int, wake: WakeSignal) {
        self.maxUnsentBytes = maxUnsentBytes
        self.wake = wake
    }

    func enqueue(_ command: Command) throws(RedisError) {
        try state.withLock { (state) throws(RedisError) in
            switch state.mode {
            case .closed: throw .closed
            case .refusing(let reason): throw .notConnected(reason)
            case .accepting: break
            }
            guard state.queuedBytes + state.unsentBytes + command.bytes.count <= maxUnsentBytes else {
                throw .bufferFull(limitBytes: maxUnsentBytes)
            }
            state.commands.append(command)
            state.queuedBytes += command.bytes.count
            // The thread takes the whole list per wake-up, so only the first command since then wakes it.
            if state.commands.count == 1 { wake.wake() }
        }
    }

    /// Everything queued, in order; its bytes now count as unsent until the thread reports otherwise.
    func takeAll() -> [Command] {
        state.withLock { state in
            state.unsentBytes += state.queuedBytes
            state.queuedBytes = 0
            defer { state.commands = [] }
            return state.commands
        }
    }

    func setUnsentBytes(_ count: Int) {
        state.withLock { $0.unsentBytes = count }
    }

    func accept() {
        state.withLock { state in
            if case .refusing = state.mode { state.mode = .accepting }
        }
    }

    /// Refuses new commands until `accept`, and returns the queued ones for failing.
    func refuse(_ reason: RedisDisconnectReason) -> [Command] {
        state.withLock { state in
            if case .accepting = state.mode { state.mode = .refusing(reason) }
            state.queuedBytes = 0
            defer { state.commands = [] }
            return state.commands
        }
    }

    func close() {
        state.withLock { state in
            state.mode = .closed
            wake.wake()
        }
    }

    var isClosed: Bool {
        state.withLock { state in
            if case .closed = state.mode { return true }
            return false
        }
    }
}
