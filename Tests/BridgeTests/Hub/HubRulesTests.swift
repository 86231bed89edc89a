@testable import Bridge
import Testing

/// The hub's rules on one node (the `LocalAuthority`), through real sessions on a loopback
/// port: what each client hears and which channel events (webhooks) are emitted, once each.
@Suite struct HubRulesTests {
    private typealias Frame = PusherTestClient.Frame

    @Test func aSubscriberHearsItsSubscriptionSucceededBeforeItsOwnCount() throws {
        let broker = try PusherTestBroker { $0.enableSubscriptionCount = true }
        let first = try broker.client()
        first.subscribe("room")
        #expect(try first.next() == Frame(event: "pusher_internal:subscription_succeeded", channel: "room", data: "{}"))
        #expect(try first.next() == Frame(event: "pusher_internal:subscription_count", channel: "room", data: #"{"subscription_count":1}"#))
        let second = try broker.client()
        second.subscribe("room")
        #expect(try second.next().event == "pusher_internal:subscription_succeeded")
        #expect(try second.next().data == #"{"subscription_count":2}"#)
        #expect(try first.next().data == #"{"subscription_count":2}"#)
    }

    @Test func aChannelIsOccupiedOnceAndVacatedOnce() throws {
        let broker = try PusherTestBroker()
        let first = try broker.client(), second = try broker.client()
        first.subscribe("room")
        second.subscribe("room")
        _ = try first.next("pusher_internal:subscription_succeeded")
        _ = try second.next("pusher_internal:subscription_succeeded")
        first.unsubscribe("room")
        second.unsubscribe("room")
        let vacated = ChannelEvent.channelVacated(channel: "room")
        let events = broker.events.snapshot { $0.contains(vacated) }
        #expect(events == [.channelOccupied(channel: "room"), vacated])
        #expect(broker.hub.directory.withLock { $0.channels["room"] } == nil)
    }

    @Test func presenceMembersAreListedOnceAndAnnouncedToTheOthers() throws {
        let broker = try PusherTestBroker()
        let alice = try broker.client(), bob = try broker.client(), bobAgain = try broker.client()
        alice.subscribe("presence-room", userID: "alice")
        let aliceList = try alice.next("pusher_internal:subscription_succeeded").frame
        #expect(aliceList.data.contains(#""count":1"#))
        bob.subscribe("presence-room", userID: "bob")
        let bobList = try bob.next("pusher_internal:subscription_succeeded").frame
        #expect(bobList.data.contains(#""count":2"#) && bobList.data.contains("alice"))
        #expect(try alice.next() == Frame(event: "pusher_internal:member_added", channel: "presence-room",
                                            data: #"{"user_id":"bob","user_info":null}"#))
        // A second connection of the same user is no new member: nobody hears of it.
        bobAgain.subscribe("presence-room", userID: "bob")
        #expect(try bobAgain.next("pusher_internal:subscription_succeeded").frame.data.contains(#""count":2"#))
        #expect(try alice.drain() == [])
        bob.unsubscribe("presence-room")
        #expect(try alice.drain() == [])
        bobAgain.unsubscribe("presence-room")
        #expect(try alice.next() == Frame(event: "pusher_internal:member_removed", channel: "presence-room",
                                            data: #"{"user_id":"bob"}"#))
        let removed = ChannelEvent.memberRemoved(channel: "presence-room", userID: "bob")
        let events = broker.events.snapshot { $0.contains(removed) }
        #expect(events == [.channelOccupied(channel: "presence-room"), .memberAdded(channel: "presence-room", userID: "alice"),
                           .memberAdded(channel: "presence-room", userID: "bob"), removed])
    }

    @Test func aFullPresenceChannelRefusesANewUserAndKeepsItsMembers() throws {
        let broker = try PusherTestBroker { $0.maxPresenceMembersPerChannel = 1 }
        let alice = try broker.client(), bob = try broker.client()
        alice.subscribe("presence-room", userID: "alice")
        _ = try alice.next("pusher_internal:subscription_succeeded")
        bob.subscribe("presence-room", userID: "bob")
        let refusal = try bob.next("pusher:subscription_error").frame
        #expect(refusal.channel == "presence-room" && refusal.data.contains(#""type":"LimitReached""#))
        #expect(try alice.drain() == [])
        #expect(broker.hub.directory.withLock { $0.channels["presence-room"]?.members.keys.sorted() } == ["alice"])
    }

    @Test func aClientEventReachesTheOtherSubscribersNotItsSender() throws {
        let broker = try PusherTestBroker()
        let sender = try broker.client(), listener = try broker.client()
        for client in [sender, listener] {
            client.subscribe("private-room")
            _ = try client.next("pusher_internal:subscription_succeeded")
        }
        sender.send(#"{"event":"client-typing","channel":"private-room","data":{"who":"me"}}"#)
        #expect(try listener.next() == Frame(event: "client-typing", channel: "private-room", data: ""))
        #expect(try sender.drain() == [])
        let events = broker.events.snapshot { $0.count == 2 }
        #expect(events.last == .clientEvent(channel: "private-room", event: "client-typing", data: #"{"who":"me"}"#,
                                            socketID: sender.socketID, userID: nil))
    }

    @Test func aCacheChannelAnswersAMissOnceThenItsLastEvent() throws {
        let broker = try PusherTestBroker()
        let first = try broker.client()
        first.subscribe("cache-news")
        _ = try first.next("pusher_internal:subscription_succeeded")
        #expect(try first.next().event == "pusher:cache_miss")
        #expect(broker.events.snapshot { $0.contains(.cacheMiss(channel: "cache-news")) }
                    .filter { $0 == .cacheMiss(channel: "cache-news") }.count == 1)
        broker.hub.publishFromAPI(name: "headline", channel: ChannelName("cache-news")!, data: Array(#""extra""#.utf8)[...],
                                  dataString: #""extra""#, except: nil, cacheTTL: 60)
        #expect(try first.next() == Frame(event: "headline", channel: "cache-news", data: "extra"))
        let second = try broker.client()
        second.subscribe("cache-news")
        _ = try second.next("pusher_internal:subscription_succeeded")
        #expect(try second.next() == Frame(event: "headline", channel: "cache-news", data: "extra"))
    }
}
