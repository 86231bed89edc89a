import Foundation
import Synchronization

/// Where a connection lives: its loop, its fd, and the generation that tells a reused fd apart.
/// Safe to hold on any thread; it is only dereferenced on the owning loop.
public struct ConnectionAddress: Hashable, Sendable {
    public let loop: Int
    public let fd: Int32
    public let generation: UInt32
}

/// The N event loops and what they share: the connection count, the id counter, the drain state.
public final class LoopGroup: Sendable {
    private let storage = Mutex<[EventLoop]>([])
    private let active = Atomic<Int>(0)
    private let ids = Atomic<UInt64>(0)
    private let stopped = Atomic<Bool>(false)
    private let draining = Atomic<Bool>(false)
    let maxConnections: Int
    public let memory: MemoryGuard

    init(maxConnections: Int, memory: MemoryGuard = MemoryGuard(limitBytes: nil)) {
        self.maxConnections = maxConnections
        self.memory = memory
    }

    public var loops: [EventLoop] { storage.withLock { $0 } }

    /// Open connections counted against `--max-connections`, over every loop.
    public var activeConnections: Int { active.load(ordering: .relaxed) }
    public var isDraining: Bool { draining.load(ordering: .relaxed) }
    var isStopped: Bool { stopped.load(ordering: .relaxed) }

    /// Creates the loops, binds their listeners, and starts their threads. Returns the bound ports
    /// (useful with port 0); `tls` is nil without a TLS listener.
    func start(count: Int, server: ServerContext) throws -> (plain: Int, tls: Int?) {
        var created: [EventLoop] = []
        var port = server.config.port
        var tlsPort = server.config.tls?.port
        for index in 0..<count {
            let loop = try EventLoop(index: index, group: self, server: server)
            // The first bind picks the port (maybe ephemeral); the others share it via SO_REUSEPORT.
            port = try loop.listen(host: server.config.host, port: port)
            if let settings = server.config.tls, let requested = tlsPort {
                tlsPort = try loop.listen(host: settings.host ?? server.config.host, port: requested, tls: true)
            }
            created.append(loop)
        }
        storage.withLock { $0 = created }
        for loop in created {
            let thread = Thread { loop.run() }
            thread.name = "bridge-loop-\(loop.index)"
            thread.start()
        }
        return (port, tlsPort)
    }

    /// Takes a connection slot; false past `--max-connections` or while over the memory threshold.
    func admitConnection() -> Bool {
        guard !memory.isOver else { return false }
        let after = active.add(1, ordering: .relaxed).newValue
        if after > maxConnections {
            active.subtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func releaseConnection() {
        active.subtract(1, ordering: .relaxed)
    }

    func nextConnectionID() -> UInt64 {
        ids.add(1, ordering: .relaxed).newValue
    }

    /// Queues one shared buffer on many connections, on whichever loops they live: one task per
    /// loop, and the bytes themselves are never copied. Connections that closed meanwhile, or are
    /// not open WebSockets, are skipped.
    public func send(_ buffer: OutboundBuffer, to addresses: [ConnectionAddress]) {
        let loops = self.loops
        var byLoop = [[ConnectionAddress]](repeating: [], count: loops.count)
        for address in addresses where address.loop < loops.count {
            byLoop[address.loop].append(address)
        }
        for (index, targets) in byLoop.enumerated() where !targets.isEmpty {
            loops[index].execute { loop in
                for address in targets {
                    guard let connection = loop.connections[address.fd],
                          connection.generation == address.generation else { continue }
                    connection.sendWebSocketFrame(buffer)
                }
            }
        }
    }

    func beginDrain() {
        draining.store(true, ordering: .relaxed)
        for loop in loops {
            loop.execute { $0.beginDrain() }
        }
    }

    func stop() {
        stopped.store(true, ordering: .relaxed)
    }
}
