@testable import Bridge
import Testing

/// A session that remembers what the transport told it.
private final class RecordingSession: WebSocketSession {
    var messages: [WebSocketMessage] = []
    var closedWith: [CloseCode?] = []
    var pingInterval: Double? { 5 }
    var pingFrame: OutboundBuffer? { OutboundBuffer("custom ping") }

    func received(_ message: WebSocketMessage) { messages.append(message) }
    func closed(code: CloseCode?) { closedWith.append(code) }
}

/// What the exchange asked for, in a form tests can compare.
private enum Seen: Equatable {
    case deliver(WebSocketMessage)
    case pong([UInt8])
    case finish(closeFrame: [UInt8]?, code: CloseCode?, toldSession: Bool)
    case fail(CloseCode, closeFrame: [UInt8]?)
}

private func bytes(_ buffer: OutboundBuffer?) -> [UInt8]? {
    buffer.map { Array($0.bytes) }
}

/// A server close frame as it must appear on the wire: FIN + close, length, code, reason.
private func serverClose(_ code: UInt16, _ reason: String = "") -> [UInt8] {
    let payload = [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8)
    return [0x88, UInt8(payload.count)] + payload
}

private final class Driver {
    var exchange: WebSocketExchange
    let session = RecordingSession()

    init(limits: WebSocketLimits = WebSocketLimits(), now: UInt32 = 0) {
        exchange = WebSocketExchange(limits: limits, now: now, pingInterval: 10)
        exchange.opened(session, pingInterval: nil, pingFrame: nil)
    }

    /// Feeds one read, the way `Connection.receiveWebSocket` does, delivering messages to the session.
    func feed(_ input: [UInt8], now: UInt32 = 0) -> [Seen] {
        var seen: [Seen] = []
        var offset = 0
        input.withUnsafeBytes { input in
            repeat {
                let (consumed, action) = exchange.receive(UnsafeRawBufferPointer(rebasing: input[offset...]), now: now)
                offset += consumed
                switch action {
                case nil:
                    return
                case .deliver(let message, let session):
                    seen.append(.deliver(message))
                    session.received(message)
                case .pong(let frame):
                    seen.append(.pong(Array(frame.bytes)))
                case .finish(let ending):
                    seen.append(.finish(closeFrame: bytes(ending.closeFrame), code: ending.code, toldSession: ending.session === session))
                    return
                case .fail(let error, let ending):
                    seen.append(.fail(error.closeCode, closeFrame: bytes(ending.closeFrame)))
                    return
                }
            } while offset < input.count
        }
        return seen
    }
}

@Suite struct WebSocketExchangeTests {
    @Test func messagesGoToTheSessionInOrder() {
        let driver = Driver()
        let seen = driver.feed(ClientFrame.text("one") + ClientFrame.make(.binary, [1, 2]) + ClientFrame.text("two"))
        #expect(seen == [.deliver(.text(Array("one".utf8))), .deliver(.binary([1, 2])), .deliver(.text(Array("two".utf8)))])
        #expect(driver.session.messages.count == 3)
    }

    @Test func aPingIsAnsweredWithItsPayload() {
        let driver = Driver()
        #expect(driver.feed(ClientFrame.make(.ping, [7, 8])) == [.pong([0x8A, 2, 7, 8])])
    }

    @Test func thePeersCloseIsEchoedAndTheSessionToldOnce() {
        let driver = Driver()
        let seen = driver.feed(ClientFrame.make(.close, [0x03, 0xE8] + Array("bye".utf8)))
        #expect(seen == [.finish(closeFrame: serverClose(1000, "bye"), code: .normalClosure, toldSession: true)])
        #expect(driver.exchange.session == nil)
        #expect(driver.exchange.takeSession() == nil)
    }

    @Test func anEmptyCloseGetsAnEmptyClose() {
        let driver = Driver()
        #expect(driver.feed(ClientFrame.make(.close, [])) == [.finish(closeFrame: [0x88, 0], code: nil, toldSession: true)])
    }

    @Test func afterOurCloseDataIsDroppedAndTheAnswerEndsTheExchange() {
        let driver = Driver()
        #expect(bytes(driver.exchange.close(code: .goingAway, reason: "later")) == serverClose(1001, "later"))
        #expect(driver.exchange.close(code: .normalClosure, reason: "") == nil)
        #expect(!driver.exchange.acceptsOutput)
        // Neither data nor pings are answered any more (RFC 6455 §5.5.1).
        #expect(driver.feed(ClientFrame.text("late") + ClientFrame.make(.ping, [])) == [])
        #expect(driver.session.messages.isEmpty)
        #expect(driver.feed(ClientFrame.make(.close, [0x03, 0xE9])) == [.finish(closeFrame: nil, code: .goingAway, toldSession: true)])
    }

    @Test func protocolErrorsCloseWithTheirCode() {
        // An unmasked client frame: 1002.
        let unmasked = Driver()
        let protocolError = unmasked.feed(ClientFrame.make(.text, Array("hi".utf8), mask: nil))
        guard case .fail(.protocolError, let frame?)? = protocolError.first else {
            Issue.record("expected a 1002 failure, got \(protocolError)")
            return
        }
        #expect(Array(frame.prefix(4)) == [0x88, UInt8(frame.count - 2), 0x03, 0xEA])
        // Invalid UTF-8 in a text message: 1007.
        let invalidText = Driver()
        #expect(invalidText.feed(ClientFrame.make(.text, [0xC3, 0x28])).map(\.failureCode) == [.invalidPayload])
        // A message over the limit: 1009.
        let tooBig = Driver(limits: WebSocketLimits(maxFrameBytes: 16, maxMessageBytes: 16))
        #expect(tooBig.feed(ClientFrame.text(String(repeating: "x", count: 17))).map(\.failureCode) == [.messageTooBig])
        // The stream cannot be resynchronised: later input is ignored.
        #expect(tooBig.feed(ClientFrame.text("ok")) == [])
    }

    @Test func silenceEarnsAPingThenAnUnansweredPingEndsTheConnection() {
        let driver = Driver(now: 100)
        guard case .wait(untilTick: 110) = driver.exchange.deadlineReached(now: 105) else {
            Issue.record("not silent long enough yet")
            return
        }
        guard case .ping(let ping) = driver.exchange.deadlineReached(now: 110) else {
            Issue.record("silence earns a ping")
            return
        }
        #expect(Array(ping.bytes) == [0x89, 0])
        guard case .pongOverdue = driver.exchange.deadlineReached(now: 140) else {
            Issue.record("an unanswered ping is overdue")
            return
        }
    }

    @Test func anyInputAnswersThePing() {
        let driver = Driver(now: 0)
        guard case .ping = driver.exchange.deadlineReached(now: 10) else {
            Issue.record("silence earns a ping")
            return
        }
        _ = driver.feed([], now: 12)
        #expect(!driver.exchange.pingOutstanding)
        guard case .wait(untilTick: 22) = driver.exchange.deadlineReached(now: 15) else {
            Issue.record("activity moves the next ping")
            return
        }
    }

    @Test func theSessionsKeepAliveSettingsReplaceTheDefaults() {
        var exchange = WebSocketExchange(limits: WebSocketLimits(), now: 0, pingInterval: 10)
        let session = RecordingSession()
        exchange.opened(session, pingInterval: EventLoop.ticks(session.pingInterval!), pingFrame: session.pingFrame)
        #expect(exchange.pingInterval == 50)
        guard case .ping(let ping) = exchange.deadlineReached(now: 50) else {
            Issue.record("the session's interval decides")
            return
        }
        #expect(String(decoding: ping.bytes, as: UTF8.self) == "custom ping")
    }

    @Test func afterOurCloseTheDeadlineDropsTheConnection() {
        let driver = Driver()
        _ = driver.exchange.close(code: .normalClosure, reason: "")
        guard case .closeNow = driver.exchange.deadlineReached(now: 1) else {
            Issue.record("an unanswered close ends in a TCP close")
            return
        }
    }

    @Test func aSlowConsumerIsEndedWithTheSessionsCode() {
        let driver = Driver()
        let ending = driver.exchange.end(sending: CloseCode(rawValue: 4100), reason: "slow")
        #expect(bytes(ending.closeFrame) == serverClose(4100, "slow"))
        #expect(ending.code == CloseCode(rawValue: 4100))
        #expect(ending.session === driver.session)
        #expect(!driver.exchange.acceptsOutput)
    }
}

extension Seen {
    var failureCode: CloseCode? {
        if case .fail(let code, _) = self { return code }
        return nil
    }
}
