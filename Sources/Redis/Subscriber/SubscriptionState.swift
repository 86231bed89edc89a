import Synchronization
import System

/// What the subscriber wants, shared between callers and the connection thread: the
/// subscriptions to hold, and the (UN)SUBSCRIBE commands to send on the live connection.
final class SubscriptionState: Sendable {
    private struct State: Sendable {
        var channels: Set<String> = []
        var patterns: Set<String> = []
        /// Commands for the live connection; empty while there is none, since
        /// `becameReady` subscribes to the whole set.
        var pending: [UInt8] = []
        var isConnected = false
        var isClosed = false
    }

    private let wake: WakeSignal
    private let state = Mutex(State())

    init(wake: WakeSignal) {
        self.wake = wake
    }

    /// Adds or removes subscriptions; sends the change now if connected.
    func change(_ names: [String], pattern: Bool, subscribe: Bool) {
        state.withLock { state in
            var changed: [String] = []
            for name in names {
                let didChange = switch (pattern, subscribe) {
                case (false, true): state.channels.insert(name).inserted
                case (false, false): state.channels.remove(name) != nil
                case (true, true): state.patterns.insert(name).inserted
                case (true, false): state.patterns.remove(name) != nil
                }
                if didChange { changed.append(name) }
            }
            guard state.isConnected, !state.isClosed, !changed.isEmpty else { return }
            let wasEmpty = state.pending.isEmpty
            Self.appendCommands(Self.commandName(pattern: pattern, subscribe: subscribe), changed, to: &state.pending)
            if wasEmpty { wake.wake() }
        }
    }

    var subscriptions: Set<RedisSubscription> {
        state.withLock { state in
            Set(state.channels.map(RedisSubscription.channel)).union(state.patterns.map(RedisSubscription.pattern))
        }
    }

    var isClosed: Bool { state.withLock { $0.isClosed } }

    func close() {
        state.withLock { state in
            state.isClosed = true
            wake.wake()
        }
    }

    /// Marks the connection live and returns the commands that subscribe to everything.
    func connected() -> [UInt8] {
        state.withLock { state in
            state.isConnected = true
            state.pending = []
            var commands: [UInt8] = []
            Self.appendCommands("SUBSCRIBE", state.channels.sorted(), to: &commands)
            Self.appendCommands("PSUBSCRIBE", state.patterns.sorted(), to: &commands)
            return commands
        }
    }

    func disconnected() {
        state.withLock { state in
            state.isConnected = false
            state.pending = []
        }
    }

    func takePending() -> [UInt8] {
        state.withLock { state in
            defer { state.pending = [] }
            return state.pending
        }
    }

    private static func commandName(pattern: Bool, subscribe: Bool) -> String {
        (pattern ? "P" : "") + (subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE")
    }

    /// One command per 1,000 names keeps each command a modest size.
    private static func appendCommands(_ command: String, _ names: [String], to buffer: inout [UInt8]) {
        var start = 0
        while start < names.count {
            let end = min(start + 1000, names.count)
            RESPEncoder.appendCommand([command] + names[start..<end].map { $0 as any RedisArgument }, to: &buffer)
            start = end
        }
    }
}
