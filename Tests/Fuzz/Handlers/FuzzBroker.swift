import Dispatch
import Glibc

// The real broker the handler targets drive: a Server with the Pusher WebSocket endpoint, the
// Pusher HTTP API and the seed API, one event loop running on its own thread, apps with an
// organization behind them. Compiled together with every source of Support and Bridge (see
// scripts/fuzz.sh), so the harness reaches internal API: it opens connections itself and feeds
// them bytes exactly as `Connection.readable()` would, with no network in between.
//
// One input = one task on the loop's thread (`FuzzBroker.run`), so fan-out (`EventLoop.execute`
// from the loop itself runs inline) happens before the task returns and nothing races the
// harness. Every input starts from fresh apps (new hubs, rate-limit windows, caches) and ends
// with every connection closed; the next input checks that the last one left nothing behind.

/// The broker under test, built once per process.
final class FuzzBroker: @unchecked Sendable {
    static let shared = FuzzBroker()

    /// The app every target addresses; owned by `organization`, so the seed API and seed-mode
    /// sockets reach it too.
    let app: AppConfig
    /// A second tenant's app, in no organization: no seed JWT may reach it.
    let otherApp: AppConfig
    let organization = "acme"
    let authority: SeedAuthority
    /// A JWT for `organization`, issued at start (its TTL outlasts any fuzzing run).
    let jwt: String
    /// The organization's secret token (what `POST /api/sessions` trades for a JWT).
    let secretToken: String
    let server: Server
    let broker: Broker
    let loop: EventLoop
    private var nextGeneration: UInt32 = 1 << 31

    private init() {
        Log.level = .error
        // A flush to a socket whose peer the harness already closed must not kill the process.
        signal(SIGPIPE, SIG_IGN)
        var app = AppConfig(id: "1", key: "app-key", secret: "app-secret")
        app.organization = organization
        app.enableSubscriptionCount = true
        self.app = app
        otherApp = AppConfig(id: "2", key: "other-key", secret: "other-secret")

        let dataDir = "/tmp/bridge-fuzz-\(getpid())"
        do {
            let store = try OrganizationStore(dataDir: dataDir)
            let slug = organization
            secretToken = try store.update { directory throws(OrganizationError) in
                try directory.createOrganization(slug: slug, name: nil, now: time(nil)).secretToken
            }
            authority = SeedAuthority(store: store, key: Array("fuzz-jwt-key".utf8), ttl: 30 * 24 * 3600)
        } catch {
            fatalError("fuzz broker: cannot set up the organization store in \(dataDir): \(error)")
        }
        // The store is read into memory; its files are not needed past this point.
        unlink(dataDir + "/organizations.json")
        unlink(dataDir + "/organizations.lock")
        rmdir(dataDir)
        guard let issued = authority.issue(secretToken: secretToken, now: time(nil)) else {
            fatalError("fuzz broker: the organization's own token was refused")
        }
        jwt = issued.jwt

        var config = ServerConfig()
        config.host = "127.0.0.1"
        config.port = 0
        config.threads = 1
        config.logLevel = .error
        server = Server(config: config)
        let organizations = Broker.Organizations(authority: authority, adminToken: nil, reservedAppIDs: { [] },
                                                 validateApp: { _ in nil }, didChange: {})
        broker = Broker(server: server, apps: [app, otherApp], observer: AcceptingObserver(), organizations: organizations)
        // Not `server.start()`: that blocks SIGTERM/SIGINT for `runUntilSignalled`, and libFuzzer
        // must keep them.
        do {
            _ = try server.loops.start(count: 1, server: ServerContext(config: config, router: server.router))
        } catch {
            fatalError("fuzz broker: cannot start the event loop: \(error)")
        }
        loop = server.loops.loops[0]
    }

    /// Runs `body` as one task on the loop's thread and waits for it. Before it: the apps are
    /// replaced by fresh ones; the previous input must have left no connection open.
    func run(_ body: @escaping (FuzzBroker) -> Void) {
        let done = DispatchSemaphore(value: 0)
        let task = UncheckedBox { [self] in
            fuzzCheck(loop.connections.count == 0, "an earlier input left \(loop.connections.count) connections open")
            fuzzCheck(server.loops.activeConnections == 0, "an earlier input left connections counted")
            // Removing every app, then adding them, builds new App objects: no state carries over.
            _ = broker.apps.reload([])
            _ = broker.apps.reload([app, otherApp])
            body(self)
        }
        loop.execute { _ in
            task.value()
            done.signal()
        }
        done.wait()
    }

    /// The running App behind `app` (a fresh one per input).
    var liveApp: App {
        guard let live = broker.apps.app(id: app.id) else { preconditionFailure("the fuzzed app is missing") }
        return live
    }

    /// A new connection on the loop, as if just accepted. Call on the loop's thread.
    func connect() -> FuzzConnection {
        var fds: [Int32] = [-1, -1]
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        guard socketpair(AF_UNIX, type, 0, &fds) == 0 else { fatalError("socketpair: errno \(errno)") }
        fuzzCheck(server.loops.admitConnection(), "the loop group refused a connection")
        nextGeneration = nextGeneration == UInt32.max ? 1 << 31 : nextGeneration + 1
        let connection = Connection(fd: fds[0], generation: nextGeneration, id: server.loops.nextConnectionID(),
                                    loop: loop, counted: true)
        loop.connections.insert(connection)
        connection.startHTTP()
        return FuzzConnection(connection: connection, peer: fds[1])
    }

    /// The Pusher session the connection opened, found where the hub keeps it (nil when refused).
    func session(of socket: FuzzConnection) -> PusherSession? {
        liveApp.hub.shard(loop.index).sessions.values.first { $0.connection === socket.connection }
    }

    /// After an input closed everything: the app's hub keeps no subscriber, member or signed-in
    /// user, and every connection slot was given back.
    func checkNothingLeft(in app: App) {
        fuzzCheck(app.connectionCount == 0, "app \(app.id) still counts \(app.connectionCount) connections")
        app.hub.directory.withLock { directory in
            for (name, state) in directory.channels {
                fuzzCheck(state.subscribers == 0 && state.members.isEmpty, "channel \(name) kept subscribers after every connection closed")
            }
            fuzzCheck(directory.onlineConnections.isEmpty && directory.signedInConnections == 0,
                         "users stayed online after every connection closed")
        }
        for shard in app.hub.shards {
            fuzzCheck(shard.sessions.isEmpty && shard.channels.isEmpty && shard.signedIn.isEmpty,
                         "a hub shard kept sessions after every connection closed")
        }
    }
}

/// One socket of the broker's loop and the harness's end of it.
final class FuzzConnection {
    let connection: Connection
    private let peer: Int32
    /// Everything the server wrote so far.
    private(set) var received: [UInt8] = []
    /// Bounds what a chatty input makes the harness keep.
    static let maxKept = 1 << 20

    init(connection: Connection, peer: Int32) {
        self.connection = connection
        self.peer = peer
    }

    /// Feeds `bytes` as one read would, then flushes what the server queued and reads it.
    func send(_ bytes: [UInt8]) {
        guard connection.isOpen, !bytes.isEmpty else { return }
        bytes.withUnsafeBytes { connection.receive($0) }
        collect()
    }

    /// Flushes the connection's output and reads it from the peer's end.
    func collect() {
        if !connection.isClosed { connection.flush() }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = read(peer, &buffer, buffer.count)
            guard count > 0 else { break }
            if received.count < Self.maxKept { received.append(contentsOf: buffer[0..<count]) }
        }
    }

    /// A masked client frame (RFC 6455 §5.3; a zero mask key leaves the payload as is).
    static func clientFrame(_ payload: [UInt8], opcode: UInt8 = 0x1) -> [UInt8] {
        var frame: [UInt8] = [0x80 | opcode]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            frame.append(0x80 | 127)
            frame += (0..<8).reversed().map { UInt8(truncatingIfNeeded: payload.count >> ($0 * 8)) }
        }
        return frame + [0, 0, 0, 0] + payload
    }

    /// The text messages of the server's WebSocket frames received so far (after the 101's head).
    var serverMessages: [[UInt8]] {
        guard let headEnd = (0..<received.count).first(where: { received[$0...].starts(with: [13, 10, 13, 10]) }) else { return [] }
        var messages: [[UInt8]] = []
        var offset = headEnd + 4
        while offset + 2 <= received.count {
            let opcode = received[offset] & 0x0F
            var length = Int(received[offset + 1] & 0x7F)
            var start = offset + 2
            if length == 126 {
                guard start + 2 <= received.count else { break }
                length = Int(received[start]) << 8 | Int(received[start + 1])
                start += 2
            } else if length == 127 {
                guard start + 8 <= received.count else { break }
                length = received[start..<start + 8].reduce(0) { $0 << 8 | Int($1) }
                start += 8
            }
            guard length >= 0, length <= received.count - start else { break }
            if opcode == 0x1 { messages.append(Array(received[start..<start + length])) }
            offset = start + length
        }
        return messages
    }

    /// Drops the connection (the Pusher session ends, as when the TCP connection breaks) and the
    /// harness's end; the fd is released at the end of the loop turn.
    func close() {
        collect()
        connection.closeNow()
        Glibc.close(peer)
    }
}

/// The webhook sender's seat: takes every event, as a sender with room would.
struct AcceptingObserver: ChannelEventObserver {
    func app(_ appID: String, emitted event: ChannelEvent) -> Bool { true }
}

/// Lets a closure that only ever runs on the loop's thread cross into a `@Sendable` task.
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// `BRIDGE_FUZZ_VERBOSE=1` prints what each input got back (for reading a reproduced crash or a seed).
let fuzzVerbose = getenv("BRIDGE_FUZZ_VERBOSE") != nil

func fuzzReport(_ what: String, _ bytes: [UInt8]) {
    guard fuzzVerbose else { return }
    let text = String(decoding: bytes.prefix(4000), as: UTF8.self).map { $0.isASCII && ($0.isLetter || $0.isNumber || $0.isPunctuation || $0.isSymbol || $0 == " " || $0 == "\n") ? String($0) : "." }.joined()
    fputs("--- \(what) (\(bytes.count) bytes)\n\(text)\n", stderr)
}

/// Splits the input at `\n` into at most `limit` parts (the last keeps the rest, newlines included).
func fuzzLines(_ input: ArraySlice<UInt8>, limit: Int) -> [ArraySlice<UInt8>] {
    input.split(separator: UInt8(ascii: "\n"), maxSplits: max(0, limit - 1), omittingEmptySubsequences: false)
}

/// `Digest.hex(HMAC-SHA256(secret, message))`, the signature every Pusher auth string carries.
func fuzzSignature(secret: String, _ message: String) -> String {
    Digest.hex(Digest.hmacSHA256(key: Array(secret.utf8), message: Array(message.utf8)))
}

/// `precondition` that keeps its message in optimized builds, so that a crash says what broke.
func fuzzCheck(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}
