import Bridge
import Glibc
import RedisCluster
import RedisServerSupport
import Testing

/// One contract, two siblings: the in-process `LocalAuthority` of a single node and the Redis
/// adapter of a cluster (against a real redis-server). A hub relies on exactly these answers,
/// whichever one it was given at start; the cluster-only rules (several nodes, grace windows,
/// sweeps, outages) are in SharedStateTests and RedisOutageTests.
@Suite(.redisServer) struct StateAuthorityContractTests {
    enum Sibling: String, CaseIterable, CustomTestStringConvertible {
        case local, redis
        var testDescription: String { rawValue }
    }

    /// A fresh authority, started with a node that records what it hears.
    struct Subject {
        let authority: any StateAuthority
        let node: TestNode
        let cluster: TestCluster?

        init(_ sibling: Sibling) throws {
            node = TestNode()
            switch sibling {
            case .local:
                let local = LocalAuthority()
                local.start(node)
                authority = local
                cluster = nil
            case .redis:
                let cluster = try TestCluster()
                authority = try cluster.adapter("a", node: node)
                self.cluster = cluster
                // The adapter's subscriber hears member events once connected: probe until it does.
                let adapter = authority as! RedisClusterAdapter
                let probe = ClusterMessage.memberChange(appID: "probe", channel: "presence-probe", userID: "p", added: true,
                                                        info: "null", excluded: nil, version: 0)
                _ = eventually {
                    _ = try? adapter.record(ChannelShare(appID: "probe", channel: "presence-probe", subscriptions: 1,
                                                         members: [MemberShare(userID: "p", connections: 1, info: "null")]))
                    _ = try? adapter.record(ChannelShare(appID: "probe", channel: "presence-probe", subscriptions: 0,
                                                         members: [MemberShare(userID: "p", connections: 0, info: "null")]))
                    usleep(20_000)
                    return node.messages.contains { $0.appID == probe.appID }
                }
                node.clear()
            }
        }

        func stop() { cluster?.stopAll() }

        func record(_ share: ChannelShare) throws -> ChannelChange {
            let change: ChannelChange? = try completion { authority.record(share, completion: $0) }
            return try #require(change)
        }

        func record(_ channel: String, _ subscriptions: Int, member: MemberShare? = nil, wantsMembers: Bool = false,
                    cap: Int? = nil, joiner: String? = nil) throws -> ChannelChange {
            try record(ChannelShare(appID: app, channel: channel, subscriptions: subscriptions, members: member.map { [$0] } ?? [],
                                    wantsMembers: wantsMembers, memberCap: cap, joiner: joiner))
        }

        func channel(_ name: String) throws -> ChannelSummary? {
            try completion { authority.channel(appID: app, name: name, completion: $0) }
        }

        func occupied() throws -> [ChannelSummary]? {
            try completion { authority.occupiedChannels(appID: app, completion: $0) }
        }

        func users(_ channel: String) throws -> [String]? {
            try completion { authority.presenceUserIDs(appID: app, channel: channel, completion: $0) }
        }

        func present(_ channel: String, among ids: [String]) throws -> [String]? {
            try completion { authority.presentMembers(appID: app, channel: channel, among: ids, completion: $0) }
        }
    }

    static let app = "app:1"
    var app: String { Self.app }

    @Test(arguments: Sibling.allCases) func aChannelArrivesWithItsFirstSubscriptionAndDepartsWithItsLast(_ sibling: Sibling) throws {
        let subject = try Subject(sibling)
        defer { subject.stop() }
        let first = try subject.record("news", 1)
        #expect(first.transition == .arrived && first.subscriptionCount == 1 && first.channel == "news" && first.appID == app)
        let more = try subject.record("news", 3)
        #expect(more.transition == .unchanged && more.subscriptionCount == 3)
        // Shares are absolute: the same one twice changes nothing.
        #expect(try subject.record("news", 3).transition == .unchanged)
        #expect(try subject.occupied() == [ChannelSummary(name: "news", subscriptionCount: 3, userCount: 0)])
        #expect(try subject.channel("news") == ChannelSummary(name: "news", subscriptionCount: 3, userCount: 0))
        let last = try subject.record("news", 0)
        #expect(last.transition == .departed && last.subscriptionCount == 0)
        #expect(try subject.record("news", 0).transition == .unchanged)
        #expect(try subject.occupied() == [])
        #expect(try subject.channel("news") == ChannelSummary(name: "news", subscriptionCount: 0, userCount: 0))
    }

    @Test(arguments: Sibling.allCases) func presenceMembersArriveOnceDepartOnceAndKeepTheirFirstInfo(_ sibling: Sibling) throws {
        let subject = try Subject(sibling)
        defer { subject.stop() }
        let ana = #"{"name":"Ana"}"#
        let joined = try subject.record("presence-room", 1, member: MemberShare(userID: "ana", connections: 1, info: ana), wantsMembers: true)
        #expect(joined.transition == .arrived)
        #expect(joined.memberTransitions == [.init(userID: "ana", transition: .arrived, info: ana)])
        #expect(joined.memberInfos == ["ana": ana] && joined.userCount == 1)
        let v1 = joined.membersVersion
        #expect(v1 > 0)

        // A second connection of hers: no transition, no new version, her first user_info stays.
        let again = try subject.record("presence-room", 2, member: MemberShare(userID: "ana", connections: 2, info: #"{"name":"X"}"#),
                                       wantsMembers: true)
        #expect(again.memberTransitions.isEmpty && again.membersVersion == v1 && again.memberInfos == ["ana": ana])

        // Without wantsMembers the answer carries no list.
        let bob = try subject.record("presence-room", 3, member: MemberShare(userID: "bob", connections: 1, info: "null"))
        #expect(bob.memberEvents == ["bob": .arrived] && bob.members.isEmpty && bob.userCount == 2)
        #expect(bob.membersVersion > v1)

        let anaLeaves = try subject.record("presence-room", 1, member: MemberShare(userID: "ana", connections: 0, info: "null"))
        #expect(anaLeaves.memberEvents == ["ana": .departed] && anaLeaves.userCount == 1)
        #expect(anaLeaves.membersVersion > bob.membersVersion)
        #expect(try subject.users("presence-room") == ["bob"])
        #expect(try subject.present("presence-room", among: ["cy", "ana", "bob"]) == ["bob"])
        #expect(try subject.channel("presence-room") == ChannelSummary(name: "presence-room", subscriptionCount: 1, userCount: 1))
    }

    @Test(arguments: Sibling.allCases) func memberEventsReachTheNodeInVersionOrderLeavingOutTheJoiner(_ sibling: Sibling) throws {
        let subject = try Subject(sibling)
        defer { subject.stop() }
        let info = #"{"n":1}"#
        let joined = try subject.record("presence-x", 1, member: MemberShare(userID: "ana", connections: 1, info: info), joiner: "1.1")
        let left = try subject.record("presence-x", 0, member: MemberShare(userID: "ana", connections: 0, info: "null"))
        #expect(joined.membersVersion < left.membersVersion)
        let expected: [ClusterMessage] = [
            .memberChange(appID: app, channel: "presence-x", userID: "ana", added: true, info: info, excluded: "1.1",
                          version: joined.membersVersion),
            .memberChange(appID: app, channel: "presence-x", userID: "ana", added: false, info: nil, excluded: nil,
                          version: left.membersVersion),
        ]
        #expect(subject.node.wait { $0.messages == expected })
    }

    @Test(arguments: Sibling.allCases) func aNewUserPastTheCapIsRefusedAndNothingIsWritten(_ sibling: Sibling) throws {
        let subject = try Subject(sibling)
        defer { subject.stop() }
        _ = try subject.record("presence-full", 1, member: MemberShare(userID: "ana", connections: 1, info: "null"), cap: 2)
        _ = try subject.record("presence-full", 2, member: MemberShare(userID: "bob", connections: 1, info: "null"), cap: 2)
        let refused = try subject.record("presence-full", 3, member: MemberShare(userID: "cy", connections: 1, info: "null"), cap: 2)
        #expect(refused.refusedAsFull)
        #expect(try subject.channel("presence-full") == ChannelSummary(name: "presence-full", subscriptionCount: 2, userCount: 2))
        // A member already in the channel is not new: her second connection is taken at the cap.
        let anaAgain = try subject.record("presence-full", 3, member: MemberShare(userID: "ana", connections: 2, info: "null"), cap: 2)
        #expect(!anaAgain.refusedAsFull && anaAgain.subscriptionCount == 3 && anaAgain.userCount == 2)
    }

    @Test(arguments: Sibling.allCases) func aCacheChannelAnswersItsLastEventOrOneMissPerEmptyCache(_ sibling: Sibling) throws {
        let subject = try Subject(sibling)
        defer { subject.stop() }
        func subscribe(_ count: Int) throws -> ChannelChange {
            try subject.record(ChannelShare(appID: app, channel: "cache-prices", subscriptions: count, wantsLastEvent: true))
        }
        let first = try subscribe(1)
        #expect(first.lastEvent == nil && first.lastEventMissed)
        let second = try subscribe(2)
        #expect(second.lastEvent == nil && !second.lastEventMissed)   // the miss was reported once

        let envelope = Array(#"{"event":"tick","channel":"cache-prices","data":"1"}"#.utf8)
        subject.authority.keepLastEvent(LastEvent(appID: app, channel: "cache-prices", envelope: envelope, data: "1", ttlMs: 60_000))
        let third = try subscribe(3)
        let kept = try #require(third.lastEvent)
        #expect(kept.envelope == envelope && kept.data == "1" && kept.ttlMs > 0 && kept.ttlMs <= 60_000)
        #expect(!third.lastEventMissed)
        #expect(try subject.channel("cache-prices")?.lastEvent?.data == "1")

        // Once the event expires the cache is empty again, and the next subscriber reports one miss.
        subject.authority.keepLastEvent(LastEvent(appID: app, channel: "cache-prices", envelope: envelope, data: "2", ttlMs: 100))
        #expect(eventually(timeoutMs: 5_000) { (try? subject.channel("cache-prices"))??.lastEvent == nil })
        let afterExpiry = try subscribe(4)
        #expect(afterExpiry.lastEvent == nil && afterExpiry.lastEventMissed)
    }
}
