import Glibc
import Redis
import RedisServerSupport
import Testing

/// Against fake servers that misbehave in one precise way each.
@Suite struct RedisFailureTests {
    @Test func malformedReplyIsAClearErrorAndTheClientReconnects() throws {
        let fake = try FakeRedisServer(answeringFirstCommandWith: "?garbage\r\n")
        defer { fake.stop() }
        let events = Recorder<RedisConnectionEvent>()
        let client = try RedisClient(url: RedisURL(host: "127.0.0.1", port: fake.port), options: quickOptions) { events.append($0) }
        defer { client.close() }
        #expect(events.wait(count: 1) == [.connected])
        #expect(throws: RedisError.disconnected(.malformedReply(.unknownType(UInt8(ascii: "?"))))) {
            try client.sendAndWait(["PING"])
        }
        #expect(events.wait(count: 3) == [.connected, .disconnected(.malformedReply(.unknownType(UInt8(ascii: "?")))), .connected])
        #expect(eventually { fake.connections >= 2 })
    }

    @Test func oversizedReplyIsRefusedByTheLimits() throws {
        let fake = try FakeRedisServer(answeringFirstCommandWith: "$100000\r\n")
        defer { fake.stop() }
        var options = quickOptions
        options.parserLimits = RESPParserLimits(maxBulkLength: 1000)
        let client = try RedisClient(url: RedisURL(host: "127.0.0.1", port: fake.port), options: options)
        defer { client.close() }
        #expect(throws: RedisError.disconnected(.malformedReply(.bulkTooLong(length: 100_000, limit: 1000)))) {
            try client.sendAndWait(["GET", "k"])
        }
    }

    @Test func replyWithNoCommandWaitingDropsTheConnection() throws {
        let fake = try FakeRedisServer { fd in
            writeAll(fd, "+surprise\r\n")
            _ = readSome(fd)
        }
        defer { fake.stop() }
        let events = Recorder<RedisConnectionEvent>()
        let client = try RedisClient(url: RedisURL(host: "127.0.0.1", port: fake.port), options: quickOptions) { events.append($0) }
        defer { client.close() }
        guard case .disconnected(.unexpectedReply(let text))? = events.first(where: { $0 != .connected }) else {
            Issue.record("expected an unexpected-reply disconnect, got \(events.all)")
            return
        }
        #expect(text.contains("surprise"))
    }

    @Test func serverClosingMidCommandFailsItWithTheReason() throws {
        let fake = try FakeRedisServer { fd in _ = readSome(fd) }
        defer { fake.stop() }
        let client = try RedisClient(url: RedisURL(host: "127.0.0.1", port: fake.port), options: quickOptions)
        defer { client.close() }
        #expect(throws: RedisError.disconnected(.closedByServer)) { try client.sendAndWait(["PING"]) }
    }

    @Test func silentServerDuringAuthTimesOut() throws {
        let fake = try FakeRedisServer { fd in _ = readSome(fd); _ = readSome(fd) }
        defer { fake.stop() }
        var options = quickOptions
        options.connectTimeoutMs = 200
        let events = Recorder<RedisConnectionEvent>()
        let client = try RedisClient(url: RedisURL(host: "127.0.0.1", port: fake.port, password: "pw"), options: options) {
            events.append($0)
        }
        defer { client.close() }
        #expect(events.first { _ in true } == .disconnected(.connectTimedOut(afterMs: 200)))
    }

    @Test func unsentBytesAreBounded() throws {
        // AUTH is never answered, so every command waits unsent until the bound is reached.
        let fake = try FakeRedisServer { fd in _ = readSome(fd); _ = readSome(fd) }
        defer { fake.stop() }
        var options = quickOptions
        options.maxQueuedBytes = 1000
        options.connectTimeoutMs = 5000
        let client = try RedisClient(url: RedisURL(host: "127.0.0.1", port: fake.port, password: "pw"), options: options)
        defer { client.close() }
        let value = [UInt8](repeating: 97, count: 73)
        let command = RESPEncoder.command(["SET", "k", value])
        #expect(command.count == 100)
        for index in 0..<10 {
            #expect(throws: Never.self, "command \(index)") { try client.send(["SET", "k", value]) { _ in } }
        }
        #expect(throws: RedisError.bufferFull(limitBytes: 1000)) { try client.send(["SET", "k", value]) { _ in } }
        #expect(throws: RedisError.bufferFull(limitBytes: 1000)) { try client.send(["PING"]) { _ in } }
    }

    @Test func sendAndWaitGivesUpAfterItsTimeout() throws {
        let fake = try FakeRedisServer { fd in _ = readSome(fd); _ = readSome(fd) }
        defer { fake.stop() }
        let client = try RedisClient(url: RedisURL(host: "127.0.0.1", port: fake.port), options: quickOptions)
        defer { client.close() }
        #expect(throws: RedisError.timedOut(afterMs: 100)) { try client.sendAndWait(["PING"], timeoutMs: 100) }
    }

    @Test func subscriberDropsAConnectionThatSendsNonsense() throws {
        let fake = try FakeRedisServer(answeringFirstCommandWith: "*2\r\n$7\r\nmessage\r\n$1\r\na\r\n")
        defer { fake.stop() }
        let events = Recorder<RedisConnectionEvent>()
        let subscriber = try RedisSubscriber(url: RedisURL(host: "127.0.0.1", port: fake.port), options: quickOptions,
                                             onMessage: { _ in }, onEvent: { events.append($0) })
        defer { subscriber.close() }
        subscriber.subscribe(["a"])
        guard case .disconnected(.unexpectedReply(let text))? = events.first(where: { $0 != .connected }) else {
            Issue.record("expected an unexpected-reply disconnect, got \(events.all)")
            return
        }
        #expect(text.contains("message"))
        #expect(eventually { fake.connections >= 2 })
    }
}
