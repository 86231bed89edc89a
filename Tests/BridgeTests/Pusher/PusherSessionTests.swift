@testable import Bridge
import Support
import Testing

/// Which client events are refused before the rate limit: a pure function of the message, the
/// sender's subscription and the app's settings.
@Suite struct ClientEventRefusalTests {
    private static func message(_ json: String) -> JSONObject {
        guard let object = (try? JSONParser.parse(json))?.objectValue else { preconditionFailure("bad fixture \(json)") }
        return object
    }

    private static func subscription(_ name: String) -> PusherSession.Subscription {
        PusherSession.Subscription(channel: ChannelName(name)!, memberID: nil, serial: 1)
    }

    private static func check(_ json: String, subscribedTo name: String? = "private-room", seed: Bool = false,
                              _ configure: (inout AppConfig) -> Void = { _ in }) -> ClientEventRefusal? {
        var config = AppConfig(id: "1", key: "k", secret: "s")
        configure(&config)
        let message = message(json)
        let event = message["event"]?.stringValue ?? ""
        return ClientEventRefusal.check(event: event, message: message, subscription: name.map(subscription), config: config,
                                        seedEvent: seed)
    }

    @Test func aClientEventOnAPrivateChannelItJoinedPasses() {
        #expect(Self.check(#"{"event":"client-a","channel":"private-room","data":{}}"#) == nil)
        #expect(Self.check(#"{"event":"client-a","channel":"presence-room","data":"x"}"#, subscribedTo: "presence-room") == nil)
    }

    @Test func eachRefusal() {
        #expect(Self.check(#"{"event":"client-a","channel":"private-room","data":{}}"#) { $0.enableClientMessages = false } == .disabled)
        #expect(Self.check(#"{"event":"client-a","data":{}}"#) == .noChannel)
        #expect(Self.check(#"{"event":"client-a","channel":"private-room","data":{}}"#, subscribedTo: nil) == .notSubscribed("private-room"))
        #expect(Self.check(#"{"event":"client-a","channel":"private-encrypted-x","data":{}}"#, subscribedTo: "private-encrypted-x")
                    == .encryptedChannel)
        #expect(Self.check(#"{"event":"client-a","channel":"room","data":{}}"#, subscribedTo: "room") == .channelKind)
        #expect(Self.check(#"{"event":"client-abcdef","channel":"private-room","data":{}}"#) { $0.maxEventNameLength = 8 }
                    == .nameTooLong(limit: 8))
        #expect(Self.check(#"{"event":"client-a","channel":"private-room"}"#) == .noData)
        #expect(Self.check(#"{"event":"client-a","channel":"private-room","data":"0123456789"}"#) { $0.maxEventPayloadKB = 0.01 }
                    == .dataTooLarge(limit: 10))
    }

    @Test func seedEventsMayGoToPublicChannelsButNeverToEncryptedOnes() {
        #expect(Self.check(#"{"event":"message","channel":"room","data":{}}"#, subscribedTo: "room", seed: true) == nil)
        #expect(Self.check(#"{"event":"message","channel":"private-encrypted-x","data":{}}"#,
                           subscribedTo: "private-encrypted-x", seed: true) == .encryptedChannel)
    }
}

/// A session's signin, user events and watchlist, through a real connection.
@Suite struct PusherSessionSigninTests {
    private static func signin(_ client: PusherTestClient, userData: String, secret: String = "app-secret") {
        let auth = ChannelAuth(appKey: "app-key", secret: secret)
        let signature = auth.signature(of: ChannelAuth.signinStringToSign(socketID: client.socketID, userData: userData))
        client.send(#"{"event":"pusher:signin","data":{"auth":"app-key:\#(signature)","user_data":"#
                    + JSONWriter.quoted(userData) + "}}")
    }

    @Test func aSignedInUserGetsEventsSentToIt() throws {
        let broker = try PusherTestBroker()
        let client = try broker.client()
        Self.signin(client, userData: #"{"id":"alice"}"#)
        #expect(try client.next() == .init(event: "pusher:signin_success", channel: nil, data: #"{"user_data":"{\"id\":\"alice\"}"}"#))
        broker.hub.publishToUserEverywhere(PusherEvent.encode(event: "hello", channel: "#server-to-user-alice", data: "hi"),
                                           userID: "alice")
        #expect(try client.next() == .init(event: "hello", channel: "#server-to-user-alice", data: "hi"))
    }

    @Test func aBadSigninSignatureIsRefusedAndSignsNobodyIn() throws {
        let broker = try PusherTestBroker()
        let client = try broker.client()
        Self.signin(client, userData: #"{"id":"alice"}"#, secret: "wrong")
        let refusal = try client.next()
        #expect(refusal.event == "pusher:error")
        #expect(broker.hub.directory.withLock { $0.onlineConnections.isEmpty })
    }

    @Test func aWatcherHearsWhenAWatchedUserComesOnlineAndGoesOffline() throws {
        let broker = try PusherTestBroker()
        let bob = try broker.client()
        Self.signin(bob, userData: #"{"id":"bob","watchlist":["alice"]}"#)
        _ = try bob.next("pusher:signin_success")
        #expect(try bob.next().data == #"{"events":[{"name":"offline","user_ids":["alice"]}]}"#)
        var alice: PusherTestClient? = try broker.client()
        Self.signin(alice!, userData: #"{"id":"alice"}"#)
        #expect(try bob.next().data == #"{"events":[{"name":"online","user_ids":["alice"]}]}"#)
        alice = nil
        #expect(try bob.next().data == #"{"events":[{"name":"offline","user_ids":["alice"]}]}"#)
    }
}
