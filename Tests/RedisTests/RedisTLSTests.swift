import Glibc
import Redis
import RedisServerSupport
import Testing

/// A TLS redis-server with a certificate for `names`, signed by the test CA of `certificates`.
private func tlsServer(_ certificates: TestCertificates, names: [String] = ["127.0.0.1", "localhost"],
                       _ arguments: [String] = []) throws -> RedisServerProcess {
    let (certificate, key) = try certificates.serverCertificate("redis", names: names)
    return try RedisServerProcess(arguments, tls: RedisServerTLS(certificate: certificate, key: key, caFile: certificates.caFile))
}

private func trusting(_ caFile: String?) -> RedisOptions {
    var options = quickOptions
    options.tlsCAFile = caFile
    return options
}

/// The first disconnect a client reports.
private func firstFailure(_ events: Recorder<RedisConnectionEvent>) -> RedisDisconnectReason? {
    guard case .disconnected(let reason)? = events.first(where: { $0 != .connected }) else { return nil }
    return reason
}

/// The server's count of accepted connections, read over its plain port (a TLS connection
/// counts only once its handshake succeeded); the reading connection counts itself.
private func connectionsAccepted(_ server: RedisServerProcess) -> Int {
    guard let info = (try? BlockingConnection(port: server.plainPort).roundTrip(["INFO", "stats"]))?.string,
          let line = info.split(separator: "\r\n").first(where: { $0.hasPrefix("total_connections_received:") }) else {
        return 0
    }
    return Int(line.dropFirst("total_connections_received:".count)) ?? 0
}

/// Whether the client keeps trying: at least two more connections within 600 ms (the backoff is 10-100 ms).
private func keepsRetrying(_ server: RedisServerProcess) -> Bool {
    let before = connectionsAccepted(server)
    usleep(600_000)
    return connectionsAccepted(server) - before - 1 >= 2
}

/// `rediss://` against real TLS redis-servers, with certificates made for each test.
@Suite struct RedisTLSTests {
    @Test func commandsOverTLSWithTheCAFile() throws {
        let certificates = try TestCertificates()
        let server = try tlsServer(certificates, ["--requirepass", "pw"])
        defer { server.kill() }
        var url = server.url
        url.password = "pw"
        url.database = 3
        let events = Recorder<RedisConnectionEvent>()
        let client = try RedisClient(url: url, options: trusting(certificates.caFile)) { events.append($0) }
        defer { client.close() }
        #expect(try client.sendAndWait(["PING"]) == .simpleString("PONG"))
        #expect(try client.sendAndWait(["CLIENT", "INFO"]).string?.contains("db=3") == true)
        // Bigger than a TLS record (16 KiB) and than one read: written and read in many pieces.
        let big = (0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        #expect(try client.sendAndWait(["SET", "big", big]) == .simpleString("OK"))
        #expect(try client.sendAndWait(["GET", "big"]) == .bulkString(big))

        let replies = Recorder<RESPValue>()
        for index in 0..<5000 {
            try client.send(["ECHO", index]) { replies.append((try? $0.get()) ?? .null) }
        }
        #expect(replies.wait(count: 5000, timeoutMs: 20_000) == (0..<5000).map { .bulkString(Array(String($0).utf8)) })
        #expect(events.all == [.connected])
    }

    @Test func aDNSNameIsCheckedAgainstTheCertificate() throws {
        let certificates = try TestCertificates()
        let server = try tlsServer(certificates)
        defer { server.kill() }
        var url = server.url
        url.host = "localhost"
        let client = try RedisClient(url: url, options: trusting(certificates.caFile))
        defer { client.close() }
        #expect(try client.sendAndWait(["PING"]) == .simpleString("PONG"))
    }

    @Test func pubSubOverTLS() throws {
        let certificates = try TestCertificates()
        let server = try tlsServer(certificates)
        defer { server.kill() }
        let messages = Recorder<RedisMessage>()
        let confirmations = Recorder<RedisSubscriptionEvent>()
        let subscriber = try RedisSubscriber(url: server.url, options: trusting(certificates.caFile),
                                             onMessage: { messages.append($0) }, onSubscription: { confirmations.append($0) })
        defer { subscriber.close() }
        subscriber.subscribe(["firehose"])
        #expect(confirmations.wait(count: 1) == [.subscribed(.channel("firehose"), count: 1)])
        let client = try RedisClient(url: server.url, options: trusting(certificates.caFile))
        defer { client.close() }
        // Enough to fill many reads in a row, so a turn ends with input still to read.
        let filler = [UInt8](repeating: 120, count: 4000)
        for index in 0..<2000 {
            try client.send(["PUBLISH", "firehose", Array("\(index):".utf8) + filler]) { _ in }
        }
        let received = messages.wait(count: 2000, timeoutMs: 30_000)
        #expect(received.count == 2000)
        #expect(received.map { $0.payload.prefix { $0 != UInt8(ascii: ":") } } == (0..<2000).map { Array(String($0).utf8)[...] })
    }

    @Test func withoutTheCAFileTheCertificateIsRefusedAndRetried() throws {
        let certificates = try TestCertificates()
        let server = try tlsServer(certificates)
        defer { server.kill() }
        let relay = try FakeRedisServer(relayingTo: server.port)
        defer { relay.stop() }
        let events = Recorder<RedisConnectionEvent>()
        let client = try RedisClient(url: RedisURL(host: "127.0.0.1", port: relay.port, usesTLS: true), options: quickOptions) {
            events.append($0)
        }
        defer { client.close() }
        // redis-server sends its chain with the CA (found in its --tls-ca-cert-file); a server
        // that sends only its own certificate fails one step earlier.
        let reason = try #require(firstFailure(events))
        #expect(["TLS: certificate verify failed: self-signed certificate in certificate chain",
                 "TLS: certificate verify failed: unable to get local issuer certificate"].contains(reason.description), "\(reason)")
        #expect(throws: RedisError.notConnected(reason)) { try client.sendAndWait(["PING"]) }
        #expect(eventually { relay.connections >= 3 })
        #expect(!events.all.contains(.connected))
    }

    @Test func aCertificateForAnotherHostIsRefused() throws {
        let certificates = try TestCertificates()
        let server = try tlsServer(certificates, names: ["redis.other.example", "10.9.9.9"])
        defer { server.kill() }
        let byAddress = Recorder<RedisConnectionEvent>()
        let client = try RedisClient(url: server.url, options: trusting(certificates.caFile)) { byAddress.append($0) }
        defer { client.close() }
        #expect(firstFailure(byAddress) == .tlsFailed("certificate verify failed: IP address mismatch"))

        var url = server.url
        url.host = "localhost"
        let byName = Recorder<RedisConnectionEvent>()
        let named = try RedisClient(url: url, options: trusting(certificates.caFile)) { byName.append($0) }
        defer { named.close() }
        #expect(firstFailure(byName) == .tlsFailed("certificate verify failed: hostname mismatch"))

        // The backoff keeps trying: once the server has the right certificate, both get through.
        _ = try certificates.serverCertificate("redis", names: ["127.0.0.1", "localhost"])
        server.kill()
        try server.start()
        #expect(eventually { (try? client.sendAndWait(["PING"])) == .simpleString("PONG") })
        #expect(eventually { (try? named.sendAndWait(["PING"])) == .simpleString("PONG") })
        #expect(byAddress.all.last == .connected && byName.all.last == .connected)
    }

    @Test func aPlainTextServerIsRefused() throws {
        // A server that answers the ClientHello as Redis answers an unknown command: deterministic.
        let fake = try FakeRedisServer(answeringFirstCommandWith: "-ERR unknown command\r\n")
        defer { fake.stop() }
        let events = Recorder<RedisConnectionEvent>()
        let client = try RedisClient(url: RedisURL(host: "127.0.0.1", port: fake.port, usesTLS: true), options: quickOptions) {
            events.append($0)
        }
        defer { client.close() }
        guard case .tlsFailed(let message)? = firstFailure(events) else {
            Issue.record("expected a TLS failure, got \(events.all)")
            return
        }
        #expect(message.hasPrefix("handshake failed (error:"), "\(message)")
        #expect(eventually { fake.connections >= 2 })

        // A real redis-server's plain port: it answers once the hello holds a newline, else
        // waits, so the attempt fails by TLS or by the connect timeout; either way it is retried.
        let server = try RedisServerProcess()
        defer { server.kill() }
        var options = quickOptions
        options.connectTimeoutMs = 300
        let plainEvents = Recorder<RedisConnectionEvent>()
        var url = server.url
        url.usesTLS = true
        let plain = try RedisClient(url: url, options: options) { plainEvents.append($0) }
        defer { plain.close() }
        switch firstFailure(plainEvents) {
        case .tlsFailed?, .connectTimedOut(afterMs: 300)?: break
        default: Issue.record("expected a TLS failure or a timeout, got \(plainEvents.all)")
        }
        #expect(keepsRetrying(server))
        #expect(try BlockingConnection(port: server.port).roundTrip(["PING"]) == .simpleString("PONG"))
    }

    @Test func aServerStallingMidHandshakeIsCutOffByTheConnectTimeout() throws {
        // Reads the ClientHello and never answers.
        let fake = try FakeRedisServer { fd in _ = readSome(fd); _ = readSome(fd) }
        defer { fake.stop() }
        var options = quickOptions
        options.connectTimeoutMs = 300
        let events = Recorder<RedisConnectionEvent>()
        let client = try RedisClient(url: RedisURL(host: "127.0.0.1", port: fake.port, usesTLS: true), options: options) {
            events.append($0)
        }
        defer { client.close() }
        #expect(firstFailure(events) == .connectTimedOut(afterMs: 300))
        #expect(eventually { fake.connections >= 2 })
    }

    @Test func anUnreadableCAFileIsAClearReasonAndReadAgainOnEveryAttempt() throws {
        let certificates = try TestCertificates()
        let server = try tlsServer(certificates)
        defer { server.kill() }
        let later = certificates.directory + "/later.pem"
        let events = Recorder<RedisConnectionEvent>()
        let client = try RedisClient(url: server.url, options: trusting(later)) { events.append($0) }
        defer { client.close() }
        guard case .tlsFailed(let message)? = firstFailure(events) else {
            Issue.record("expected a TLS failure, got \(events.all)")
            return
        }
        #expect(message.hasPrefix("cannot load the CA file \(later) ("), "\(message)")
        #expect(link(certificates.caFile, later) == 0)
        #expect(eventually { (try? client.sendAndWait(["PING"])) == .simpleString("PONG") })
    }

    @Test func reconnectsAfterTheTLSServerRestarts() throws {
        let certificates = try TestCertificates()
        let server = try tlsServer(certificates)
        defer { server.kill() }
        let events = Recorder<RedisConnectionEvent>()
        let client = try RedisClient(url: server.url, options: trusting(certificates.caFile)) { events.append($0) }
        defer { client.close() }
        let messages = Recorder<RedisMessage>()
        let subscriber = try RedisSubscriber(url: server.url, options: trusting(certificates.caFile), onMessage: { messages.append($0) })
        defer { subscriber.close() }
        subscriber.subscribe(["news"])
        #expect(eventually { (try? client.sendAndWait(["PUBLISH", "news", "before"])) == .integer(1) })

        server.kill()
        #expect(events.first { if case .disconnected = $0 { true } else { false } } != nil)
        try server.start()
        #expect(eventually { (try? client.sendAndWait(["PUBLISH", "news", "after"])) == .integer(1) })
        #expect(events.all.last == .connected)
        #expect(messages.wait(count: 2).map(\.payload).suffix(1) == [Array("after".utf8)])
    }
}
