import Redis
import Testing
import RedisServerSupport

/// A subscriber on a fresh server, with what it receives recorded; all stopped after `body`.
private func withSubscriber(_ body: (RedisServerProcess, RedisSubscriber, Recorder<RedisMessage>, Recorder<RedisSubscriptionEvent>) throws -> Void) throws {
    let server = try RedisServerProcess()
    defer { server.kill() }
    let messages = Recorder<RedisMessage>()
    let confirmations = Recorder<RedisSubscriptionEvent>()
    let subscriber = try RedisSubscriber(url: server.url, options: quickOptions,
                                         onMessage: { messages.append($0) }, onSubscription: { confirmations.append($0) })
    defer { subscriber.close() }
    try body(server, subscriber, messages, confirmations)
}

/// Against a real redis-server started per test.
@Suite struct RedisSubscriberTests {
    @Test func deliversMessagesOfChannelsAndPatterns() throws {
        try withSubscriber { server, subscriber, messages, confirmations in
            subscriber.subscribe(["room:1", "room:2"])
            subscriber.psubscribe(["news.*"])
            #expect(Set(confirmations.wait(count: 3)) == [
                .subscribed(.channel("room:1"), count: 1), .subscribed(.channel("room:2"), count: 2),
                .subscribed(.pattern("news.*"), count: 3),
            ])
            #expect(subscriber.subscriptions == [.channel("room:1"), .channel("room:2"), .pattern("news.*")])

            let client = try RedisClient(url: server.url, options: quickOptions)
            defer { client.close() }
            let payload: [UInt8] = [0, 13, 10, 200, 123]
            #expect(try client.sendAndWait(["PUBLISH", "room:1", payload]) == .integer(1))
            #expect(try client.sendAndWait(["PUBLISH", "news.sport", "goal"]) == .integer(1))
            #expect(try client.sendAndWait(["PUBLISH", "elsewhere", "x"]) == .integer(0))
            #expect(messages.wait(count: 2) == [
                RedisMessage(channel: "room:1", payload: payload),
                RedisMessage(channel: "news.sport", pattern: "news.*", payload: Array("goal".utf8)),
            ])

            subscriber.unsubscribe(["room:1"])
            subscriber.punsubscribe(["news.*"])
            #expect(confirmations.wait(count: 5).suffix(2) == [
                .unsubscribed(.channel("room:1"), count: 2), .unsubscribed(.pattern("news.*"), count: 1),
            ])
            #expect(try client.sendAndWait(["PUBLISH", "room:1", "gone"]) == .integer(0))
            #expect(try client.sendAndWait(["PUBLISH", "room:2", "still"]) == .integer(1))
            #expect(messages.wait(count: 3).last == RedisMessage(channel: "room:2", payload: Array("still".utf8)))
        }
    }

    @Test func manyMessagesArriveInOrder() throws {
        try withSubscriber { server, subscriber, messages, confirmations in
            subscriber.subscribe(["firehose"])
            confirmations.wait(count: 1)
            let client = try RedisClient(url: server.url, options: quickOptions)
            defer { client.close() }
            for index in 0..<2000 {
                try client.send(["PUBLISH", "firehose", index]) { _ in }
            }
            #expect(messages.wait(count: 2000, timeoutMs: 20_000).map { String(decoding: $0.payload, as: UTF8.self) } == (0..<2000).map(String.init))
        }
    }

    @Test func resubscribesEverythingAfterTheServerRestarts() throws {
        let server = try RedisServerProcess(["--requirepass", "pw"])
        defer { server.kill() }
        var url = server.url
        url.password = "pw"
        let messages = Recorder<RedisMessage>()
        let confirmations = Recorder<RedisSubscriptionEvent>()
        let events = Recorder<RedisConnectionEvent>()
        let subscriber = try RedisSubscriber(url: url, options: quickOptions, onMessage: { messages.append($0) },
                                             onSubscription: { confirmations.append($0) }, onEvent: { events.append($0) })
        defer { subscriber.close() }
        subscriber.subscribe(["a"])
        subscriber.psubscribe(["p.*"])
        confirmations.wait(count: 2)

        server.kill()
        #expect(events.first { if case .disconnected = $0 { true } else { false } } != nil)
        // Changed while down: kept, and sent with the rest on reconnect.
        subscriber.subscribe(["b"])
        try server.start()
        let resubscribed: Set<RedisSubscriptionEvent> = [
            .subscribed(.channel("a"), count: 1), .subscribed(.channel("b"), count: 2), .subscribed(.pattern("p.*"), count: 3),
        ]
        #expect(eventually { resubscribed.isSubset(of: confirmations.all.dropFirst(2)) })
        #expect(events.all.last == .connected)

        let client = try RedisClient(url: url, options: quickOptions)
        defer { client.close() }
        #expect(try client.sendAndWait(["PUBLISH", "a", "after restart"]) == .integer(1))
        #expect(try client.sendAndWait(["PUBLISH", "p.q", "pattern too"]) == .integer(1))
        #expect(messages.wait(count: 2) == [
            RedisMessage(channel: "a", payload: Array("after restart".utf8)),
            RedisMessage(channel: "p.q", pattern: "p.*", payload: Array("pattern too".utf8)),
        ])
    }

    @Test func closeStopsTheThread() throws {
        let server = try RedisServerProcess()
        defer { server.kill() }
        let confirmations = Recorder<RedisSubscriptionEvent>()
        let subscriber = try RedisSubscriber(url: server.url, options: quickOptions, onMessage: { _ in },
                                             onSubscription: { confirmations.append($0) })
        defer { subscriber.close() }
        subscriber.subscribe(["x"])
        confirmations.wait(count: 1)
        subscriber.close()
        let client = try RedisClient(url: server.url, options: quickOptions)
        defer { client.close() }
        #expect(try client.sendAndWait(["PUBLISH", "x", "nobody"]) == .integer(0))
    }
}
