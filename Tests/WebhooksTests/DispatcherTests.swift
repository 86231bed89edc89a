import Foundation
import Synchronization
import Testing
@testable import Webhooks

/// `WebhookDispatcher` against real HTTP/1.1 receivers on loopback.
@Suite struct DispatcherTests {
    static let events = Array(#"[{"name":"channel_occupied","channel":"my-channel"}]"#.utf8)

    // MARK: Success and the request itself

    @Test func deliversWithExactHeadersAndAValidSignatureOverTheExactBody() throws {
        let receiver = try TestReceiver(replies: [.status(200)])
        defer { receiver.stop() }
        let createdAtMs = unixMs() - 1_500
        let extraHeaders = [
            ("X-Tenant", "acme"),
            ("Content-Type", "text/plain"),       // ours wins: dropped
            ("x-pusher-key", "forged"),           // ours wins, whatever the case: dropped
            ("X-Smuggle", "a\r\nX-Injected: 1"),  // would add a header line: dropped
        ]
        let delivery = makeDelivery(id: "d-1", url: receiver.url, createdAtMs: createdAtMs, extraHeaders: extraHeaders)

        let outcomes = try runDispatcher(submitting: [delivery], until: 1)

        #expect(outcomes.map(\.outcome) == [.delivered(status: 200, attempts: 1)])
        let got = try #require(receiver.waitForRequests(count: 1).first)
        #expect(got.method == "POST")
        #expect(got.target == "/webhooks")
        let expectedBody = Array(#"{"time_ms":\#(createdAtMs),"events":[{"name":"channel_occupied","channel":"my-channel"}]}"#.utf8)
        #expect(got.body == expectedBody)
        #expect(got.body == delivery.body(nowMs: 0))
        #expect(got.headers.map { $0.name.lowercased() }.sorted() == [
            "content-length", "content-type", "host", "user-agent", "x-bridge-webhook-attempt",
            "x-bridge-webhook-id", "x-pusher-key", "x-pusher-signature", "x-tenant",
        ])
        #expect(got.values(of: "Content-Type") == ["application/json"])
        #expect(got.values(of: "X-Pusher-Key") == ["app-key"])
        #expect(got.values(of: "User-Agent") == ["Bridge-Webhooks/1.0"])
        #expect(got.values(of: "X-Bridge-Webhook-Id") == ["d-1"])
        #expect(got.values(of: "X-Bridge-Webhook-Attempt") == ["1"])
        #expect(got.values(of: "X-Tenant") == ["acme"])
        #expect(got.values(of: "Content-Length") == ["\(expectedBody.count)"])
        let signature = try #require(got.values(of: "X-Pusher-Signature").first)
        #expect(WebhookSignature.isValid(body: got.body, secret: "app-secret", signature: signature))
    }

    @Test func stampTimeAtDeliveryPutsTheAttemptTimeInTheSignedBody() throws {
        let receiver = try TestReceiver(replies: [.status(204, body: [])])
        defer { receiver.stop() }
        var delivery = makeDelivery(id: "d-1", url: receiver.url, createdAtMs: unixMs() - 60_000)
        delivery.stampTimeAtDelivery = true

        let before = unixMs()
        let outcomes = try runDispatcher(submitting: [delivery], until: 1)
        let after = unixMs()

        #expect(outcomes.map(\.outcome) == [.delivered(status: 204, attempts: 1)])
        let got = try #require(receiver.waitForRequests(count: 1).first)
        let timeMs = try #require(bodyTimeMs(got.body))
        #expect(timeMs >= before && timeMs <= after)
        let signature = try #require(got.values(of: "X-Pusher-Signature").first)
        #expect(WebhookSignature.isValid(body: got.body, secret: "app-secret", signature: signature))
    }

    // MARK: Retries

    @Test func serverErrorIsRetriedWithTheSameDeliveryId() throws {
        let receiver = try TestReceiver(replies: [.status(500), .status(200)])
        defer { receiver.stop() }

        let outcomes = try runDispatcher(submitting: [makeDelivery(id: "d-1", url: receiver.url)], until: 1)

        #expect(outcomes.map(\.outcome) == [.delivered(status: 200, attempts: 2)])
        let got = receiver.waitForRequests(count: 2)
        #expect(got.map { $0.values(of: "X-Bridge-Webhook-Id") } == [["d-1"], ["d-1"]])
        #expect(got.map { $0.values(of: "X-Bridge-Webhook-Attempt") } == [["1"], ["2"]])
        #expect(got.count == 2 && got[0].body == got[1].body)  // time_ms stays the creation time
    }

    @Test(arguments: [408, 409, 425, 429, 502, 503])
    func retryableStatusIsRetried(status: Int) throws {
        let receiver = try TestReceiver(replies: [.status(status), .status(200)])
        defer { receiver.stop() }

        let outcomes = try runDispatcher(submitting: [makeDelivery(id: "d-1", url: receiver.url)], until: 1)

        #expect(outcomes.map(\.outcome) == [.delivered(status: 200, attempts: 2)])
    }

    @Test func clientErrorIsFinalAfterOneAttempt() throws {
        let receiver = try TestReceiver(replies: [.status(400, body: Array("Unknown\r\nchannel".utf8)), .status(200)])
        defer { receiver.stop() }

        let outcomes = try runDispatcher(submitting: [makeDelivery(id: "d-1", url: receiver.url)], until: 1,
                                         thenWaitMs: 300)

        #expect(outcomes.map(\.outcome) == [.failed(lastError: "HTTP 400: Unknown channel", attempts: 1)])
        #expect(receiver.received().count == 1)
    }

    @Test func redirectIsFinalAndNotFollowed() throws {
        let elsewhere = try TestReceiver(replies: [.status(200)])
        defer { elsewhere.stop() }
        let receiver = try TestReceiver(replies: [.status(307, body: [], headers: [("Location", elsewhere.url)])])
        defer { receiver.stop() }

        let outcomes = try runDispatcher(submitting: [makeDelivery(id: "d-1", url: receiver.url)], until: 1,
                                         thenWaitMs: 200)

        #expect(outcomes.map(\.outcome) == [.failed(lastError: "HTTP 307", attempts: 1)])
        #expect(elsewhere.received().isEmpty)
    }

    @Test func retryAfterSecondsIsWaitedFor() throws {
        let receiver = try TestReceiver(replies: [.status(429, headers: [("Retry-After", "1")]), .status(200)])
        defer { receiver.stop() }
        var options = Self.fastOptions
        options.maxRetryDelayMs = 5_000

        let outcomes = try runDispatcher(options: options, submitting: [makeDelivery(id: "d-1", url: receiver.url)],
                                         until: 1)

        #expect(outcomes.map(\.outcome) == [.delivered(status: 200, attempts: 2)])
        let got = receiver.waitForRequests(count: 2)
        try #require(got.count == 2)
        #expect(got[1].arrivedAt - got[0].arrivedAt >= .milliseconds(900))
    }

    @Test func retryAfterIsCappedAtTheMaximumRetryDelay() throws {
        let receiver = try TestReceiver(replies: [.status(503, headers: [("Retry-After", "3600")]), .status(200)])
        defer { receiver.stop() }
        var options = Self.fastOptions
        options.maxRetryDelayMs = 200

        let outcomes = try runDispatcher(options: options, submitting: [makeDelivery(id: "d-1", url: receiver.url)],
                                         until: 1, timeoutMs: 3_000)

        #expect(outcomes.map(\.outcome) == [.delivered(status: 200, attempts: 2)])
    }

    @Test func closedConnectionWithoutAnswerIsRetried() throws {
        let receiver = try TestReceiver(replies: [.hangUp, .status(200)])
        defer { receiver.stop() }

        let outcomes = try runDispatcher(submitting: [makeDelivery(id: "d-1", url: receiver.url)], until: 1)

        #expect(outcomes.map(\.outcome) == [.delivered(status: 200, attempts: 2)])
    }

    // curl itself resends a request once when a reused connection closes before
    // any answer, so the receiver may see one attempt twice: it de-duplicates by id.
    @Test func hangUpOnAReusedConnectionIsStillDelivered() throws {
        let receiver = try TestReceiver(replies: [.status(200), .hangUp, .status(200), .status(200)])
        defer { receiver.stop() }
        var options = Self.fastOptions
        options.maxInFlightPerTarget = 1
        let deliveries = [makeDelivery(id: "d-1", url: receiver.url), makeDelivery(id: "d-2", url: receiver.url)]

        let outcomes = try runDispatcher(options: options, submitting: deliveries, until: 2)

        #expect(outcomes.map(\.id) == ["d-1", "d-2"])
        #expect(outcomes.allSatisfy { if case .delivered(200, _) = $0.outcome { true } else { false } })
        let ids = receiver.received().flatMap { $0.values(of: "X-Bridge-Webhook-Id") }
        #expect(ids.first == "d-1" && ids.dropFirst().allSatisfy { $0 == "d-2" })
    }

    @Test func receiverDownThenStartedIsDelivered() throws {
        let receiver = try TestReceiver(replies: [.status(200)], listening: false)
        defer { receiver.stop() }
        let log = OutcomeLog()
        let dispatcher = WebhookDispatcher(options: Self.fastOptions, onOutcome: log.record)
        dispatcher.start()
        defer { dispatcher.stop(graceMs: 0) }

        dispatcher.submit(makeDelivery(id: "d-1", url: receiver.url))
        Thread.sleep(forTimeInterval: 0.3)  // connections refused meanwhile
        #expect(log.entries().isEmpty)
        try receiver.startListening()

        let outcomes = log.wait(count: 1)
        #expect(outcomes.count == 1)
        guard case .delivered(200, let attempts)? = outcomes.first?.outcome else {
            Issue.record("expected delivered, got \(outcomes)")
            return
        }
        #expect(attempts >= 2)
        #expect(receiver.received().map { $0.values(of: "X-Bridge-Webhook-Attempt") } == [["\(attempts)"]])
    }

    @Test func hangingTargetTimesOutAndRetriesWhileOtherTargetsAreServed() throws {
        let hanging = try TestReceiver(replies: [.silence, .status(200)])
        defer { hanging.stop() }
        let healthy = try TestReceiver { _, _ in .status(200) }
        defer { healthy.stop() }
        var options = Self.fastOptions
        options.requestTimeoutMs = 1_000
        options.maxInFlight = 2
        options.maxInFlightPerTarget = 1
        let log = OutcomeLog()
        let dispatcher = WebhookDispatcher(options: options, onOutcome: log.record)
        dispatcher.start()
        defer { dispatcher.stop(graceMs: 0) }

        dispatcher.submit(makeDelivery(id: "slow", target: "slow", url: hanging.url))
        #expect(hanging.waitForRequests(count: 1).count == 1)
        let submitted = ContinuousClock.now
        for index in 0..<5 {
            dispatcher.submit(makeDelivery(id: "fast-\(index)", target: "fast", url: healthy.url))
        }

        let fast = log.wait(count: 5)
        #expect(ContinuousClock.now - submitted < .milliseconds(800))
        #expect(fast.map(\.id) == (0..<5).map { "fast-\($0)" })
        #expect(fast.allSatisfy { $0.outcome == .delivered(status: 200, attempts: 1) })

        let all = log.wait(count: 6)
        #expect(all.last?.id == "slow")
        #expect(all.last?.outcome == .delivered(status: 200, attempts: 2))
    }

    // MARK: Giving up

    @Test func maxAgeEndsRetriesWithTheLastError() throws {
        let receiver = try TestReceiver { _, _ in .status(503, body: Array("down".utf8)) }
        defer { receiver.stop() }
        var options = Self.fastOptions
        options.maxAgeMs = 400

        let outcomes = try runDispatcher(options: options, submitting: [makeDelivery(id: "d-1", url: receiver.url)],
                                         until: 1)

        guard case .failed(let lastError, let attempts)? = outcomes.first?.outcome else {
            Issue.record("expected failed, got \(outcomes)")
            return
        }
        #expect(lastError == "HTTP 503: down")
        #expect(attempts >= 2)
        #expect(receiver.received().count == attempts)
    }

    @Test func aDeliveryAlreadyTooOldGetsOneAttempt() throws {
        let receiver = try TestReceiver { _, _ in .status(500) }
        defer { receiver.stop() }
        let old = makeDelivery(id: "d-1", url: receiver.url, createdAtMs: unixMs() - 600_000)

        let outcomes = try runDispatcher(submitting: [old], until: 1, thenWaitMs: 200)

        #expect(outcomes.map(\.outcome) == [.failed(lastError: "HTTP 500: ok", attempts: 1)])
        #expect(receiver.received().count == 1)
    }

    @Test func nonRetryableCurlErrorIsFinal() throws {
        let outcomes = try runDispatcher(submitting: [makeDelivery(id: "d-1", url: "file:///etc/passwd")], until: 1)

        guard case .failed(let lastError, 1)? = outcomes.first?.outcome else {
            Issue.record("expected failed after one attempt, got \(outcomes)")
            return
        }
        #expect(lastError.hasPrefix("curl error 1:"), "\(lastError)")  // CURLE_UNSUPPORTED_PROTOCOL
    }

    // MARK: Ordering, caps and connection reuse

    @Test func firstAttemptsToOneTargetArriveInSubmissionOrderOverOneConnection() throws {
        let receiver = try TestReceiver { _, _ in .status(200) }
        defer { receiver.stop() }
        var options = Self.fastOptions
        options.maxInFlightPerTarget = 1
        let deliveries = (0..<50).map { makeDelivery(id: "d-\($0)", url: receiver.url) }

        let outcomes = try runDispatcher(options: options, submitting: deliveries, until: 50)

        #expect(outcomes.count == 50)
        let arrived = receiver.received().flatMap { $0.values(of: "X-Bridge-Webhook-Id") }
        #expect(arrived == deliveries.map(\.id))
        #expect(receiver.connectionCount == 1)
    }

    @Test func perTargetCapHoldsUnderLoad() throws {
        let receiver = try TestReceiver { _, _ in .status(200, delayMs: 5) }
        defer { receiver.stop() }
        let deliveries = (0..<500).map { makeDelivery(id: "d-\($0)", url: receiver.url) }

        let outcomes = try runDispatcher(submitting: deliveries, until: 500, timeoutMs: 10_000)

        #expect(outcomes.count == 500)
        #expect(outcomes.allSatisfy { $0.outcome == .delivered(status: 200, attempts: 1) })
        #expect(Set(outcomes.map(\.id)).count == 500)
        #expect(receiver.received().count == 500)
        #expect(receiver.maxConcurrentRequests <= 8)
        #expect(receiver.maxConcurrentRequests >= 2)
        #expect(receiver.connectionCount <= 8)  // reused, not one per request
    }

    // Without CURLMOPT_MAXCONNECTS curl keeps 4 idle connections per easy handle
    // still added, so when a burst drains it closes connections the next burst needs.
    @Test func idleConnectionsSurviveBetweenBursts() throws {
        let receiver = try TestReceiver { _, _ in .status(200, delayMs: 50) }
        defer { receiver.stop() }
        let log = OutcomeLog()
        let dispatcher = WebhookDispatcher(options: Self.fastOptions, onOutcome: log.record)
        dispatcher.start()
        defer { dispatcher.stop(graceMs: 0) }

        for burst in 1...3 {
            for index in 0..<8 {
                dispatcher.submit(makeDelivery(id: "\(burst)-\(index)", url: receiver.url))
            }
            #expect(log.wait(count: 8 * burst).count == 8 * burst)
        }

        #expect(receiver.connectionCount == 8)
    }

    @Test func globalCapHoldsAcrossTargets() throws {
        let receiver = try TestReceiver { _, _ in .status(200, delayMs: 5) }
        defer { receiver.stop() }
        var options = Self.fastOptions
        options.maxInFlight = 3
        let deliveries = (0..<60).map { makeDelivery(id: "d-\($0)", target: "target-\($0 % 4)", url: receiver.url) }

        let outcomes = try runDispatcher(options: options, submitting: deliveries, until: 60)

        #expect(outcomes.count == 60)
        #expect(receiver.maxConcurrentRequests <= 3)
    }

    // MARK: Counters and stopping

    @Test func countersShowRunningAndWaitingAndStopAbandonsHangingTransfers() throws {
        let receiver = try TestReceiver { _, _ in .silence }
        defer { receiver.stop() }
        var options = Self.fastOptions
        options.maxInFlightPerTarget = 2
        let log = OutcomeLog()
        let dispatcher = WebhookDispatcher(options: options, onOutcome: log.record)
        for index in 0..<10 {
            dispatcher.submit(makeDelivery(id: "d-\(index)", url: receiver.url))
        }
        #expect(dispatcher.queuedCount == 10)
        dispatcher.start()

        #expect(receiver.waitForRequests(count: 2).count == 2)
        #expect(dispatcher.inFlightCount == 2)
        #expect(dispatcher.queuedCount == 8)

        let stopping = ContinuousClock.now
        dispatcher.stop(graceMs: 100)
        #expect(ContinuousClock.now - stopping < .seconds(2))
        #expect(dispatcher.inFlightCount == 0)
        #expect(log.entries().isEmpty)
        #expect(receiver.received().count == 2)
    }

    @Test func stopWaitsForInFlightTransfersThenIgnoresSubmissions() throws {
        let receiver = try TestReceiver { _, _ in .status(200, delayMs: 300) }
        defer { receiver.stop() }
        let log = OutcomeLog()
        let dispatcher = WebhookDispatcher(options: Self.fastOptions, onOutcome: log.record)
        dispatcher.start()
        dispatcher.submit(makeDelivery(id: "d-1", url: receiver.url))
        #expect(receiver.waitForRequests(count: 1).count == 1)

        let stopping = ContinuousClock.now
        dispatcher.stop(graceMs: 5_000)
        #expect(ContinuousClock.now - stopping < .seconds(2))
        #expect(log.entries().map(\.outcome) == [.delivered(status: 200, attempts: 1)])

        dispatcher.submit(makeDelivery(id: "d-2", url: receiver.url))
        #expect(dispatcher.queuedCount == 0)
        Thread.sleep(forTimeInterval: 0.1)
        #expect(receiver.received().count == 1)
    }

    // MARK: Retry policy

    @Test func backoffDoublesToTheCapWithJitterInTheUpperHalf() {
        var options = DispatcherOptions()
        options.initialRetryDelayMs = 100
        options.maxRetryDelayMs = 1_000
        let policy = RetryPolicy(options)
        var random = SystemRandomNumberGenerator()
        let expected: [(attempts: Int, range: ClosedRange<Int>)] = [
            (1, 50...100), (2, 100...200), (3, 200...400), (4, 400...800), (5, 500...1_000), (60, 500...1_000),
        ]
        for (attempts, range) in expected {
            for _ in 0..<200 {
                let delay = policy.backoffMs(afterAttempts: attempts, using: &random)
                #expect(range.contains(delay), "attempt \(attempts): \(delay)")
            }
        }
    }

    @Test func retryAfterParsesSecondsAndAllThreeHTTPDateForms() {
        // RFC 9110 §5.6.7's example instant, 1994-11-06 08:49:37 UTC.
        let dateMs: Int64 = 784_111_777_000
        let now = dateMs - 2_000
        #expect(RetryPolicy.retryAfterMs("120", nowMs: now) == 120_000)
        #expect(RetryPolicy.retryAfterMs(" 0 ", nowMs: now) == 0)
        #expect(RetryPolicy.retryAfterMs("Sun, 06 Nov 1994 08:49:37 GMT", nowMs: now) == 2_000)
        #expect(RetryPolicy.retryAfterMs("Sunday, 06-Nov-94 08:49:37 GMT", nowMs: now) == 2_000)
        #expect(RetryPolicy.retryAfterMs("Sun Nov  6 08:49:37 1994", nowMs: now) == 2_000)
        #expect(RetryPolicy.retryAfterMs("Sun, 06 Nov 1994 08:49:37 GMT", nowMs: dateMs + 5_000) == -5_000)
        #expect(RetryPolicy.retryAfterMs("", nowMs: now) == nil)
        #expect(RetryPolicy.retryAfterMs("soon", nowMs: now) == nil)
        #expect(RetryPolicy.retryAfterMs("-5", nowMs: now) == nil)
    }

    @Test func zeroOrPastRetryAfterFallsBackToTheBackoff() {
        var options = DispatcherOptions()
        options.initialRetryDelayMs = 100
        let policy = RetryPolicy(options)
        var random = SystemRandomNumberGenerator()
        for hint in ["0", "Sun, 06 Nov 1994 08:49:37 GMT", "garbage"] {
            let delay = policy.delayMs(afterAttempts: 1, retryAfter: hint, nowMs: unixMs(), using: &random)
            #expect((50...100).contains(delay), "\(hint): \(delay)")
        }
        #expect(policy.delayMs(afterAttempts: 1, retryAfter: "7", nowMs: 0, using: &random) == 7_000)
        #expect(policy.delayMs(afterAttempts: 1, retryAfter: "999999", nowMs: 0, using: &random) == 60_000)
    }

    // MARK: Helpers

    static let fastOptions: DispatcherOptions = {
        var options = DispatcherOptions()
        options.connectTimeoutMs = 1_000
        options.requestTimeoutMs = 2_000
        options.initialRetryDelayMs = 50
        options.maxRetryDelayMs = 200
        return options
    }()

    func makeDelivery(id: String, target: String = "backend", url: String, createdAtMs: Int64 = unixMs(),
                      extraHeaders: [(String, String)] = []) -> WebhookDelivery {
        WebhookDelivery(id: id, target: target, url: url, appKey: "app-key", secret: "app-secret",
                        eventsJSON: Self.events, createdAtMs: createdAtMs, stampTimeAtDelivery: false,
                        extraHeaders: extraHeaders)
    }

    /// Starts a dispatcher, submits `deliveries`, waits for `count` outcomes
    /// (and `thenWaitMs` more, to catch any extra attempt), stops it.
    func runDispatcher(options: DispatcherOptions = fastOptions, submitting deliveries: [WebhookDelivery],
                       until count: Int, timeoutMs: Int = 5_000, thenWaitMs: Int = 0) throws -> [OutcomeLog.Entry] {
        let log = OutcomeLog()
        let dispatcher = WebhookDispatcher(options: options, onOutcome: log.record)
        dispatcher.start()
        defer { dispatcher.stop(graceMs: 0) }
        for delivery in deliveries {
            dispatcher.submit(delivery)
        }
        let outcomes = log.wait(count: count, timeoutMs: timeoutMs)
        try #require(outcomes.count == count, "outcomes: \(outcomes)")
        if thenWaitMs > 0 {
            Thread.sleep(forTimeInterval: Double(thenWaitMs) / 1_000)
        }
        return log.entries()
    }

    /// The `time_ms` value of a webhook body.
    func bodyTimeMs(_ body: [UInt8]) -> Int64? {
        let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]
        return (object?["time_ms"] as? NSNumber)?.int64Value
    }
}

func unixMs() -> Int64 {
    Int64((Date().timeIntervalSince1970 * 1_000).rounded(.down))
}

/// Outcomes as the dispatcher thread reports them.
final class OutcomeLog: Sendable {
    struct Entry: Sendable {
        let id: String
        let outcome: DeliveryOutcome
    }

    private let log = Mutex<[Entry]>([])

    func record(_ delivery: WebhookDelivery, _ outcome: DeliveryOutcome) {
        log.withLock { $0.append(Entry(id: delivery.id, outcome: outcome)) }
    }

    func entries() -> [Entry] {
        log.withLock { $0 }
    }

    /// Waits until `count` outcomes arrived or `timeoutMs` passed.
    func wait(count: Int, timeoutMs: Int = 5_000) -> [Entry] {
        let deadline = ContinuousClock.now + .milliseconds(timeoutMs)
        while entries().count < count && ContinuousClock.now < deadline {
            usleep(2_000)
        }
        return entries()
    }
}
