import Testing
@testable import Webhooks

@Suite struct WebhookEventTests {
    @Test func eventsEncodeAsPusherDocumentsThem() {
        #expect(WebhookEvent(kind: .channelOccupied, channel: "c").json == #"{"name":"channel_occupied","channel":"c"}"#)
        #expect(WebhookEvent(kind: .memberAdded, channel: "presence-x", userID: "1").json
                == #"{"name":"member_added","channel":"presence-x","user_id":"1"}"#)
        let client = WebhookEvent(kind: .clientEvent, channel: "private-c", userID: nil, event: "client-typing",
                                  data: #"{"on":true}"#, socketID: "1.2")
        #expect(client.json == #"{"name":"client_event","channel":"private-c","event":"client-typing","data":"{\"on\":true}","socket_id":"1.2"}"#)
        #expect(WebhookEvent(kind: .subscriptionCount, channel: "c", subscriptionCount: 5).json
                == #"{"name":"subscription_count","channel":"c","subscription_count":5}"#)
    }

    @Test func targetsFilterByTypeAndChannelName() {
        var target = WebhookTarget(url: "http://x")
        let occupied = WebhookEvent(kind: .channelOccupied, channel: "private-chat-1")
        #expect(target.accepts(occupied))
        target.eventTypes = [.memberAdded]
        #expect(!target.accepts(occupied))
        target.eventTypes = [.channelOccupied]
        target.channelPrefix = "private-"
        target.channelSuffix = "-1"
        #expect(target.accepts(occupied))
        #expect(!target.accepts(WebhookEvent(kind: .channelOccupied, channel: "private-chat-2")))
        #expect(!target.accepts(WebhookEvent(kind: .channelOccupied, channel: "chat-1")))
    }
}

@Suite struct GraceWindowTests {
    let vacated = WebhookEvent(kind: .channelVacated, channel: "c")
    let occupied = WebhookEvent(kind: .channelOccupied, channel: "c")

    @Test func aRejoinWithinTheDelayCancelsThePair() {
        var grace = GraceWindow(delayMs: 3000)
        #expect(grace.offer(vacated, app: "1", nowMs: 0) == nil)
        #expect(grace.offer(occupied, app: "1", nowMs: 2000) == nil)
        #expect(grace.takeDue(nowMs: 10_000).isEmpty)
    }

    @Test func aRealLeaveIsSentOnceTheDelayHasPassed() {
        var grace = GraceWindow(delayMs: 3000)
        #expect(grace.offer(vacated, app: "1", nowMs: 0) == nil)
        #expect(grace.takeDue(nowMs: 2999).isEmpty)
        #expect(grace.nextDueMs == 3000)
        let due = grace.takeDue(nowMs: 3000)
        #expect(due.count == 1 && due[0].event == vacated && due[0].app == "1")
        // After that, an arrival is a real arrival.
        #expect(grace.offer(occupied, app: "1", nowMs: 3500) == occupied)
    }

    @Test func pairsAreMatchedByAppChannelAndUser() {
        var grace = GraceWindow(delayMs: 3000)
        let removed = WebhookEvent(kind: .memberRemoved, channel: "presence-x", userID: "7")
        #expect(grace.offer(removed, app: "1", nowMs: 0) == nil)
        #expect(grace.offer(WebhookEvent(kind: .memberAdded, channel: "presence-x", userID: "8"), app: "1", nowMs: 1) != nil)
        #expect(grace.offer(WebhookEvent(kind: .memberAdded, channel: "presence-x", userID: "7"), app: "2", nowMs: 1) != nil)
        #expect(grace.offer(occupied, app: "1", nowMs: 1) == occupied)
        #expect(grace.count == 1)
        #expect(grace.offer(WebhookEvent(kind: .memberAdded, channel: "presence-x", userID: "7"), app: "1", nowMs: 2) == nil)
        #expect(grace.count == 0)
    }

    @Test func otherEventsPassAndZeroDelayHoldsNothing() {
        var grace = GraceWindow(delayMs: 3000)
        let miss = WebhookEvent(kind: .cacheMiss, channel: "cache-x")
        #expect(grace.offer(miss, app: "1", nowMs: 0) == miss)
        var none = GraceWindow(delayMs: 0)
        #expect(none.offer(vacated, app: "1", nowMs: 0) == vacated)
    }
}

@Suite struct StoredWebhookTests {
    @Test func roundTrips() {
        let stored = StoredWebhook(appID: "1", url: "https://example.com/hook", createdAtMs: 1_327_078_148_132,
                                   eventsJSON: Array(#"[{"name":"channel_occupied","channel":"é"}]"#.utf8))
        #expect(StoredWebhook(decoding: stored.encoded) == stored)
    }

    @Test func truncatedBytesAreRefused() {
        let bytes = StoredWebhook(appID: "1", url: "u", createdAtMs: 5, eventsJSON: Array("[]".utf8)).encoded
        for length in 0..<(bytes.count - 2) {
            #expect(StoredWebhook(decoding: Array(bytes.prefix(length))) == nil)
        }
    }
}

@Suite struct DeadLettersTests {
    @Test func appendReadAndReplaceKeepTheEventsText() throws {
        let path = "/tmp/bridge-deadletters-\(UInt32.random(in: 0...UInt32.max))/dead.jsonl"
        let letters = DeadLetters(path: path)
        let events = #"[{"name":"client_event","channel":"private-c","event":"client-x","data":"{\"a\":1}","socket_id":"1.2"}]"#
        let letter = DeadLetters.Letter(id: "42", appID: "1", url: "http://127.0.0.1:9/hook", createdAtMs: 1, failedAtMs: 2,
                                        attempts: 3, error: "HTTP 400", eventsJSON: events)
        try letters.append(letter)
        try letters.append(letter)
        let read = try letters.read()
        #expect(read.letters == [letter, letter] && read.skipped == 0)
        try letters.replace(with: [])
        #expect(try letters.read().letters.isEmpty)
    }
}

@Suite struct AppBacklogsTests {
    @Test func anAppPastItsShareIsRefusedAndDroppedWhileAnotherIsNot() {
        var backlogs = AppBacklogs(shareBytes: 1000, logIntervalMs: 10_000)
        // Client events stop at 4/5 of the share, lifecycle events at all of it.
        #expect(backlogs.admit(app: "a", cost: 800, isClientEvent: true) == .accept)
        #expect(backlogs.admit(app: "a", cost: 1, isClientEvent: true) == .refuse)
        #expect(backlogs.admit(app: "a", cost: 200, isClientEvent: false) == .accept)
        #expect(backlogs.admit(app: "a", cost: 1, isClientEvent: false) == .drop)
        #expect(backlogs.admit(app: "b", cost: 500, isClientEvent: true) == .accept)
        #expect(backlogs.admit(app: "b", cost: 500, isClientEvent: false) == .accept)
        #expect(json(backlogs, "a") == #"{"backlog_bytes":1000,"dropped":1,"refused":1}"#)
        #expect(json(backlogs, "b") == #"{"backlog_bytes":1000,"dropped":0,"refused":0}"#)
        // Refused until back under 7/8 of the client-event bound (700 bytes).
        backlogs.release(app: "a", cost: 250)
        #expect(backlogs.admit(app: "a", cost: 1, isClientEvent: true) == .refuse)
        backlogs.release(app: "a", cost: 100)
        #expect(backlogs.admit(app: "a", cost: 1, isClientEvent: true) == .accept)
    }

    @Test func dropsAreLoggedOncePerIntervalWithTheirCount() {
        var backlogs = AppBacklogs(shareBytes: 10, logIntervalMs: 10_000)
        for _ in 0..<3 { _ = backlogs.admit(app: "a", cost: 11, isClientEvent: false) }
        #expect(backlogs.dueLogLines(nowMs: 1_000).count == 1)
        backlogs.recordDrop(app: "a", reason: "outbox full")
        backlogs.recordDrop(app: "a", reason: "outbox full")
        #expect(backlogs.dueLogLines(nowMs: 5_000).isEmpty)
        let later = backlogs.dueLogLines(nowMs: 11_000)
        #expect(later.count == 1 && later[0].contains("dropped 2 webhooks") && later[0].contains("5 dropped in all"))
        #expect(backlogs.dueLogLines(nowMs: 30_000).isEmpty)
    }

    @Test func overflowingCostsAreClampedNotTrapped() {
        var backlogs = AppBacklogs(shareBytes: 100, logIntervalMs: 1)
        #expect(backlogs.admit(app: "a", cost: 50, isClientEvent: false) == .accept)
        #expect(backlogs.admit(app: "a", cost: .max, isClientEvent: false) == .drop)
    }
}

@Suite struct DeadLetterBoundTests {
    @Test func aLetterPastTheBoundIsRefusedAndTheFileKept() throws {
        let path = "/tmp/bridge-deadletters-\(UInt32.random(in: 0...UInt32.max))/dead.jsonl"
        let letter = DeadLetters.Letter(id: "1", appID: "1", url: "http://127.0.0.1:9/hook", createdAtMs: 1, failedAtMs: 2,
                                        attempts: 1, error: "HTTP 410", eventsJSON: "[]")
        let size = letter.line.utf8.count + 1
        let letters = DeadLetters(path: path, maxBytes: size * 2)
        try letters.append(letter)
        try letters.append(letter)
        #expect(throws: DeadLetterError.self) { try letters.append(letter) }
        do { try letters.append(letter) } catch let error as DeadLetterError { #expect(error.isFull) }
        #expect(try letters.read().letters.count == 2)
        try letters.replace(with: [letter])
        try letters.append(letter)
        #expect(try letters.read().letters.count == 2)
    }
}
