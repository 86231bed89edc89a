import Glibc
import Redis
import Testing
import RedisServerSupport

/// Fast reconnects, so that restart tests take milliseconds. The connect timeout is generous:
/// many tests run at once on two cores.
let quickOptions = RedisOptions(connectTimeoutMs: 5000, initialReconnectDelayMs: 10, maxReconnectDelayMs: 100)

/// A client that has connected, so that a burst of commands is not failed by a first
/// attempt that a loaded machine was slow to finish.
func connectedClient(_ url: RedisURL) throws -> RedisClient {
    let connected = Recorder<RedisConnectionEvent>()
    let client = try RedisClient(url: url, options: quickOptions) { connected.append($0) }
    guard connected.wait(count: 1) == [.connected] else {
        client.close()
        throw TestFailure("no connection to \(url): \(connected.all)")
    }
    return client
}

private func bulk(_ text: String) -> RESPValue { .bulkString(Array(text.utf8)) }

/// Whether a client of the server waits in BLPOP.
private func isBlocked(port: Int) -> Bool {
    (try? BlockingConnection(port: port).roundTrip(["CLIENT", "LIST", "TYPE", "normal"]))?.string?.contains("cmd=blpop") == true
}

/// The server's count of accepted connections (INFO stats), read over a connection of its own.
private func connectionsReceived(port: Int, password: String) -> Int {
    guard let connection = try? BlockingConnection(port: port),
          (try? connection.roundTrip(["AUTH", password])) != nil,
          let info = (try? connection.roundTrip(["INFO", "stats"]))?.string,
          let line = info.split(separator: "\r\n").first(where: { $0.hasPrefix("total_connections_received:") }) else {
        return 0
    }
    return Int(line.dropFirst("total_connections_received:".count)) ?? 0
}

/// Against a real redis-server started per test.
@Suite struct RedisClientTests {
    @Test func commandRoundTrips() throws {
        let server = try RedisServerProcess()
        defer { server.kill() }
        let client = try RedisClient(url: server.url, options: quickOptions)
        defer { client.close() }
        #expect(try client.sendAndWait(["PING"]) == .simpleString("PONG"))
        #expect(try client.sendAndWait(["SET", "greeting", "héllo"]) == .simpleString("OK"))
        #expect(try client.sendAndWait(["GET", "greeting"]) == bulk("héllo"))
        #expect(try client.sendAndWait(["GET", "missing"]) == .null)

        let binary: [UInt8] = [0, 13, 10, 255, 36]
        #expect(try client.sendAndWait(["HSET", "members", "u1", binary, "u2", "{}"]) == .integer(2))
        let all = try client.sendAndWait(["HGETALL", "members"]).array ?? []
        var fields: [String: [UInt8]] = [:]
        for pair in stride(from: 0, to: all.count - 1, by: 2) {
            fields[all[pair].string ?? ""] = all[pair + 1].bytes
        }
        #expect(fields == ["u1": binary, "u2": Array("{}".utf8)])

        #expect(try client.sendAndWait(["EXPIRE", "members", 100]) == .integer(1))
        #expect((1...100).contains(try client.sendAndWait(["TTL", "members"]).integer ?? 0))
        #expect(try client.sendAndWait(["PEXPIRE", "greeting", 50_000]) == .integer(1))
        #expect((1...50_000).contains(try client.sendAndWait(["PTTL", "greeting"]).integer ?? 0))

        let script = "redis.call('SET', KEYS[1], ARGV[1]); return {redis.call('GET', KEYS[1]), 7, redis.status_reply('fine')}"
        #expect(try client.sendAndWait(["EVAL", script, 1, "k", "v"]) == .array([bulk("v"), .integer(7), .simpleString("fine")]))
    }

    @Test func errorRepliesFailTheCommandOnly() throws {
        let server = try RedisServerProcess()
        defer { server.kill() }
        let client = try RedisClient(url: server.url, options: quickOptions)
        defer { client.close() }
        _ = try client.sendAndWait(["SET", "text", "x"])
        #expect {
            try client.sendAndWait(["HGET", "text", "f"])
        } throws: { error in
            guard case RedisError.server(let message) = error else { return false }
            return message.hasPrefix("WRONGTYPE")
        }
        // An error inside an array stays a value.
        let reply = try client.sendAndWait(["EVAL", "return {1, redis.error_reply('NOPE no')}", 0])
        #expect(reply == .array([.integer(1), .error("NOPE no")]))
        #expect(try client.sendAndWait(["PING"]) == .simpleString("PONG"))
    }

    @Test func tenThousandPipelinedCommandsAreAnsweredInOrder() throws {
        let server = try RedisServerProcess()
        defer { server.kill() }
        let client = try connectedClient(server.url)
        defer { client.close() }
        let replies = Recorder<Result<Int64, RedisError>>()
        let total = 10_000
        for _ in 0..<total {
            try client.send(["INCR", "counter"]) { replies.append($0.map { $0.integer ?? -1 }) }
        }
        #expect(replies.wait(count: total, timeoutMs: 20_000) == (1...Int64(total)).map { .success($0) })
    }

    @Test func sendersOnManyThreadsEachSeeTheirOwnOrder() throws {
        let server = try RedisServerProcess()
        defer { server.kill() }
        let client = try connectedClient(server.url)
        defer { client.close() }
        let perThread = 1000
        let recorders = (0..<4).map { _ in Recorder<Result<Int64, RedisError>>() }
        let done = Recorder<Bool>()
        for (index, recorder) in recorders.enumerated() {
            startThread {
                for _ in 0..<perThread {
                    try? client.send(["INCR", "counter:\(index)"]) { recorder.append($0.map { $0.integer ?? -1 }) }
                }
                done.append(true)
            }
        }
        done.wait(count: recorders.count)
        for recorder in recorders {
            #expect(recorder.wait(count: perThread) == (1...Int64(perThread)).map { .success($0) })
        }
    }

    @Test func completionsRunOnTheClientThread() throws {
        let server = try RedisServerProcess()
        defer { server.kill() }
        let client = try RedisClient(url: server.url, options: quickOptions)
        defer { client.close() }
        let onClientThread = Recorder<Bool>()
        try client.send(["PING"]) { _ in onClientThread.append(client.isOnClientThread) }
        #expect(onClientThread.wait(count: 1) == [true])
        #expect(!client.isOnClientThread)
    }

    @Test func authWithPassword() throws {
        let server = try RedisServerProcess(["--requirepass", "s3cret"])
        defer { server.kill() }
        var url = server.url
        url.password = "s3cret"
        let client = try RedisClient(url: url, options: quickOptions)
        defer { client.close() }
        #expect(try client.sendAndWait(["PING"]) == .simpleString("PONG"))

        let anonymous = try RedisClient(url: server.url, options: quickOptions)
        defer { anonymous.close() }
        #expect(throws: RedisError.self) { try anonymous.sendAndWait(["GET", "x"]) }
    }

    @Test func authWithUserAndPassword() throws {
        let server = try RedisServerProcess(["--user", "alice", "on", ">pw", "~*", "&*", "+@all"])
        defer { server.kill() }
        let client = try RedisClient(url: try RedisURL("redis://alice:pw@127.0.0.1:\(server.port)"), options: quickOptions)
        defer { client.close() }
        #expect(try client.sendAndWait(["ACL", "WHOAMI"]) == bulk("alice"))
    }

    @Test func wrongPasswordIsAClearError() throws {
        let server = try RedisServerProcess(["--requirepass", "s3cret"])
        defer { server.kill() }
        var url = server.url
        url.password = "wrong"
        let events = Recorder<RedisConnectionEvent>()
        let client = try RedisClient(url: url, options: quickOptions) { events.append($0) }
        defer { client.close() }
        let event = events.first { _ in true }
        guard case .disconnected(.handshakeFailed(let command, let message))? = event else {
            Issue.record("expected a failed AUTH, got \(String(describing: event))")
            return
        }
        #expect(command == "AUTH" && message.hasPrefix("WRONGPASS"))
        // Commands are refused with the same reason (or queued for the next attempt, never
        // sent, and failed with it).
        #expect(throws: RedisError.notConnected(.handshakeFailed(command: command, message: message))) {
            try client.sendAndWait(["PING"])
        }
        // The outage is reported once, however many attempts fail.
        #expect(eventually { connectionsReceived(port: server.port, password: "s3cret") >= 5 })
        #expect(events.all.count == 1)
    }

    @Test func selectsTheDatabaseOfTheURL() throws {
        let server = try RedisServerProcess()
        defer { server.kill() }
        var url = server.url
        url.database = 3
        let client = try RedisClient(url: url, options: quickOptions)
        defer { client.close() }
        _ = try client.sendAndWait(["SET", "where", "three"])
        let zero = try RedisClient(url: server.url, options: quickOptions)
        defer { zero.close() }
        #expect(try zero.sendAndWait(["GET", "where"]) == .null)
        let check = try BlockingConnection(port: server.port)
        _ = try check.roundTrip(["SELECT", 3])
        #expect(try check.roundTrip(["GET", "where"]) == bulk("three"))

        url.database = 99
        let events = Recorder<RedisConnectionEvent>()
        let outOfRange = try RedisClient(url: url, options: quickOptions) { events.append($0) }
        defer { outOfRange.close() }
        guard case .disconnected(.handshakeFailed("SELECT", let message))? = events.first(where: { _ in true }) else {
            Issue.record("expected a failed SELECT, got \(events.all)")
            return
        }
        #expect(message.contains("out of range"))
    }

    @Test func reconnectsAfterTheServerIsKilledAndRestarted() throws {
        let server = try RedisServerProcess()
        defer { server.kill() }
        let events = Recorder<RedisConnectionEvent>()
        let client = try RedisClient(url: server.url, options: quickOptions) { events.append($0) }
        defer { client.close() }
        #expect(try client.sendAndWait(["SET", "k", "before"]) == .simpleString("OK"))
        #expect(events.all == [.connected])

        // A blocking pop is in flight when the server dies: it fails, saying why.
        let inFlight = Recorder<Result<RESPValue, RedisError>>()
        try client.send(["BLPOP", "never", 0]) { inFlight.append($0) }
        #expect(eventually { isBlocked(port: server.port) })
        server.kill()
        // A killed server's kernel closes with FIN, or with RST when it had unread bytes.
        let lost = inFlight.wait(count: 1)
        #expect(lost == [.failure(.disconnected(.closedByServer))] || lost == [.failure(.disconnected(.socketError("read: Connection reset by peer")))])
        #expect(events.first { if case .disconnected = $0 { true } else { false } } != nil)

        // While it is down, commands are refused at once or fail, never hang.
        #expect {
            try client.sendAndWait(["GET", "k"])
        } throws: { error in
            switch error as? RedisError {
            case .notConnected?, .disconnected?: true
            default: false
            }
        }

        // A reconnect can race the dying server (its listener still accepts for a moment, then
        // resets), so the sign of recovery is a command that works, not the next event.
        try server.start()
        #expect(eventually { (try? client.sendAndWait(["PING"])) == .simpleString("PONG") })
        #expect(events.all.last == .connected)
        #expect(try client.sendAndWait(["GET", "k"]) == .null, "nothing persisted")
        #expect(try client.sendAndWait(["SET", "k", "after"]) == .simpleString("OK"))
    }

    @Test func connectionRefusedIsReportedAndRetried() throws {
        let port = try freeLoopbackPort()
        let events = Recorder<RedisConnectionEvent>()
        let client = try RedisClient(url: RedisURL(host: "127.0.0.1", port: port), options: quickOptions) { events.append($0) }
        defer { client.close() }
        let event = events.first { _ in true }
        #expect(event == .disconnected(.connectFailed(address: "127.0.0.1:\(port)", message: "Connection refused")))
        #expect(eventually {
            do throws(RedisError) {
                try client.send(["PING"]) { _ in }
                return false
            } catch {
                return error == .notConnected(.connectFailed(address: "127.0.0.1:\(port)", message: "Connection refused"))
            }
        })
    }

    @Test func oversizedCommandsAreRefusedAtOnce() throws {
        let server = try RedisServerProcess()
        defer { server.kill() }
        var options = quickOptions
        options.maxQueuedBytes = 1024
        let client = try RedisClient(url: server.url, options: options)
        defer { client.close() }
        let big = [UInt8](repeating: 120, count: 2000)
        #expect(throws: RedisError.bufferFull(limitBytes: 1024)) { try client.send(["SET", "big", big]) { _ in } }
        #expect(try client.sendAndWait(["SET", "small", "ok"]) == .simpleString("OK"))
    }

    @Test func commandsThatBreakReplyMatchingAreRefused() throws {
        let server = try RedisServerProcess()
        defer { server.kill() }
        let client = try RedisClient(url: server.url, options: quickOptions)
        defer { client.close() }
        #expect(throws: RedisError.emptyCommand) { try client.send([]) { _ in } }
        #expect(throws: RedisError.unsupportedCommand("SUBSCRIBE")) { try client.send(["subscribe", "a"]) { _ in } }
        #expect(throws: RedisError.unsupportedCommand("MONITOR")) { try client.send(["MONITOR"]) { _ in } }
        #expect(throws: RedisError.unsupportedCommand("CLIENT REPLY")) { try client.send(["CLIENT", "reply", "off"]) { _ in } }
        #expect(try client.sendAndWait(["CLIENT", "SETNAME", "bridge"]) == .simpleString("OK"))
    }

    @Test func closeFailsWhatIsPendingAndRefusesMore() throws {
        let server = try RedisServerProcess()
        defer { server.kill() }
        let client = try RedisClient(url: server.url, options: quickOptions)
        defer { client.close() }
        let inFlight = Recorder<Result<RESPValue, RedisError>>()
        try client.send(["BLPOP", "never", 0]) { inFlight.append($0) }
        #expect(eventually { isBlocked(port: server.port) })
        client.close()
        #expect(inFlight.all == [.failure(.disconnected(.closedByClient))])
        #expect(throws: RedisError.closed) { try client.send(["PING"]) { _ in } }
        client.close()
    }
}
