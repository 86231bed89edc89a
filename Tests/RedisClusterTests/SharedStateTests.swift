import Bridge
import Glibc
import Redis
import RedisCluster
import System
import Testing
import RedisServerSupport

/// Several `RedisClusterAdapter`s (one per node) against one real redis-server: the shared
/// state's cluster-wide transitions, as their scripts decide them.
@Suite(.redisServer) struct SharedStateTests {
    /// An app id with a colon: channel hash names are split at their last colon.
    let app = "app:1"

    @Test func firstSubscriptionAnywhereArrivesAndLastOneDeparts() throws {
        let cluster = try TestCluster()
        defer { cluster.stopAll() }
        let a = try cluster.adapter("a"), b = try cluster.adapter("b")

        let first = try #require(try a.record(app, "news", 1))
        #expect(first.appID == app && first.channel == "news")
        #expect(first.transition == .arrived)
        #expect(first.subscriptionCount == 1 && first.userCount == 0)
        #expect(first.memberTransitions.isEmpty && first.members.isEmpty)

        let second = try #require(try b.record(app, "news", 2))
        #expect(second.transition == .unchanged)
        #expect(second.subscriptionCount == 3)

        // Absolute values: writing the same share again changes nothing.
        for _ in 0..<2 {
            let again = try #require(try a.record(app, "news", 1))
            #expect(again.transition == .unchanged && again.subscriptionCount == 3)
            let againB = try #require(try b.record(app, "news", 2))
            #expect(againB.transition == .unchanged && againB.subscriptionCount == 3)
        }
        #expect(try a.channel(app, "news") == ChannelSummary(name: "news", subscriptionCount: 3, userCount: 0))

        // Leaving in reverse: B goes first, then A's last subscription vacates the channel.
        let bLeaves = try #require(try b.record(app, "news", 0))
        #expect(bLeaves.transition == .unchanged && bLeaves.subscriptionCount == 1)
        let aLeaves = try #require(try a.record(app, "news", 0))
        #expect(aLeaves.transition == .departed && aLeaves.subscriptionCount == 0)
        // Leaving twice does not vacate twice.
        let aAgain = try #require(try a.record(app, "news", 0))
        #expect(aAgain.transition == .unchanged && aAgain.subscriptionCount == 0)
        #expect(try a.occupiedChannels(app) == [])
    }

    @Test func presenceUserOnTwoNodesJoinsOnceAndLeavesOnce() throws {
        let cluster = try TestCluster()
        defer { cluster.stopAll() }
        let a = try cluster.adapter("a"), b = try cluster.adapter("b")
        let channel = "presence-room"
        let ana = #"{"name":"Ana"}"#

        let joined = try #require(try a.record(app, channel, 1, member: MemberShare(userID: "ana", connections: 1, info: ana),
                                               wantsMembers: true))
        #expect(joined.transition == .arrived)
        #expect(joined.memberTransitions == [.init(userID: "ana", transition: .arrived, info: ana)])
        #expect(joined.subscriptionCount == 1 && joined.userCount == 1)
        #expect(joined.memberInfos == ["ana": ana])
        let v1 = joined.membersVersion
        #expect(v1 > 0)

        // Ana again, on B, with another user_info: no transition, the first user_info stays.
        let onB = try #require(try b.record(app, channel, 1, member: MemberShare(userID: "ana", connections: 1, info: #"{"name":"Other"}"#),
                                            wantsMembers: true))
        #expect(onB.transition == .unchanged && onB.memberTransitions.isEmpty)
        #expect(onB.subscriptionCount == 2 && onB.userCount == 1)
        #expect(onB.memberInfos == ["ana": ana])
        #expect(onB.membersVersion == v1)

        // Bob joins on B; the answer without `wantsMembers` carries no members.
        let bob = try #require(try b.record(app, channel, 2, member: MemberShare(userID: "bob", connections: 1, info: "null")))
        #expect(bob.memberEvents == ["bob": .arrived] && bob.userCount == 2)
        #expect(bob.members.isEmpty)
        let v2 = bob.membersVersion
        #expect(v2 > v1)
        let listed = try #require(try a.record(app, channel, 1, member: MemberShare(userID: "ana", connections: 1, info: ana),
                                               wantsMembers: true))
        #expect(listed.memberInfos == ["ana": ana, "bob": "null"])
        #expect(listed.membersVersion == v2)

        // Ana leaves A: B still has her.
        let leftA = try #require(try a.record(app, channel, 0, member: MemberShare(userID: "ana", connections: 0, info: "null")))
        #expect(leftA.memberTransitions.isEmpty && leftA.transition == .unchanged)
        #expect(leftA.userCount == 2 && leftA.subscriptionCount == 2 && leftA.membersVersion == v2)
        // Her last connection anywhere.
        let leftB = try #require(try b.record(app, channel, 1, member: MemberShare(userID: "ana", connections: 0, info: "null")))
        #expect(leftB.memberEvents == ["ana": .departed] && leftB.transition == .unchanged)
        #expect(leftB.userCount == 1 && leftB.subscriptionCount == 1)
        let v3 = leftB.membersVersion
        #expect(v3 > v2)
        #expect(try a.presenceUserIDs(app, channel) == ["bob"])

        // The same share again: no member transition, no new version.
        let same = try #require(try b.record(app, channel, 1, member: MemberShare(userID: "ana", connections: 0, info: "null")))
        #expect(same.memberTransitions.isEmpty && same.membersVersion == v3)

        let last = try #require(try b.record(app, channel, 0, member: MemberShare(userID: "bob", connections: 0, info: "null")))
        #expect(last.memberEvents == ["bob": .departed] && last.transition == .departed)
        #expect(last.userCount == 0 && last.subscriptionCount == 0)
        #expect(last.membersVersion > v3)
        #expect(try a.presenceUserIDs(app, channel) == [])
    }

    @Test func arrivalWithinGraceReturnsToTheDepartingNode() throws {
        let cluster = try TestCluster()
        defer { cluster.stopAll() }
        let nodeA = TestNode(), nodeB = TestNode()
        let a = try cluster.adapter("a", node: nodeA, graceMs: 5_000), b = try cluster.adapter("b", node: nodeB)
        let c = try cluster.adapter("c", graceMs: 150)
        // A holder counts only while it has a lease, which its first heartbeat takes.
        #expect(nodeA.wait { $0.heartbeats >= 1 } && nodeB.wait { $0.heartbeats >= 1 })
        let ana = MemberShare(userID: "ana", connections: 1, info: "{}")
        let gone = MemberShare(userID: "ana", connections: 0, info: "null")

        #expect(try a.record(app, "presence-x", 1, member: ana)?.transition == .arrived)
        let departed = try #require(try a.record(app, "presence-x", 0, member: gone))
        #expect(departed.transition == .departed && departed.memberEvents == ["ana": .departed])
        let back = try #require(try b.record(app, "presence-x", 1, member: ana))
        #expect(back.transition == .returned(holder: a.nodeID))
        #expect(back.memberEvents == ["ana": .returned(holder: a.nodeID)])
        #expect(back.memberTransitions.first?.info == "{}")
        #expect(back.subscriptionCount == 1 && back.userCount == 1)
        // The grace record is used up by that arrival: the next departure and arrival start afresh.
        #expect(try b.record(app, "presence-x", 0, member: gone)?.transition == .departed)
        #expect(try a.record(app, "presence-x", 1, member: ana)?.transition == .returned(holder: b.nodeID))

        // C's departure has a 150 ms window: an arrival after it is a plain arrival.
        #expect(try c.record(app, "late", 1)?.transition == .arrived)
        #expect(try c.record(app, "late", 0)?.transition == .departed)
        usleep(400_000)
        #expect(try b.record(app, "late", 1)?.transition == .arrived)
    }

    @Test func restoreDropsWhatTheNodeNoLongerHas() throws {
        let cluster = try TestCluster()
        defer { cluster.stopAll() }
        let node = TestNode()
        let a = try cluster.adapter("a", node: node), b = try cluster.adapter("b")
        _ = try a.record(app, "news", 1)
        _ = try a.record(app, "chat", 2)
        _ = try b.record(app, "chat", 1)
        _ = try a.record(app, "presence-room", 1, member: MemberShare(userID: "ana", connections: 1, info: "{}"))
        _ = try a.record(app, "presence-room", 2, member: MemberShare(userID: "bob", connections: 1, info: "{}"))
        _ = try a.record("other-app", "news", 1)
        #expect(node.changes.isEmpty)

        // A now has chat (1) and Ana only.
        let shares = [
            ChannelShare(appID: app, channel: "chat", subscriptions: 1),
            ChannelShare(appID: app, channel: "presence-room", subscriptions: 1,
                         members: [MemberShare(userID: "ana", connections: 1, info: "{}")]),
        ]
        a.restore(appID: app, shares)
        #expect(node.wait { $0.changes.count >= 3 })
        try a.barrier()
        let changes = Dictionary(node.changes.map { ($0.channel, $0) }, uniquingKeysWith: { first, _ in first })
        #expect(node.changes.count == 3)
        #expect(changes["chat"]?.transition == .unchanged && changes["chat"]?.subscriptionCount == 2)
        #expect(changes["presence-room"]?.transition == .unchanged)
        #expect(changes["presence-room"]?.memberEvents == ["bob": .departed])
        #expect(changes["presence-room"]?.userCount == 1 && changes["presence-room"]?.subscriptionCount == 1)
        #expect(changes["news"]?.transition == .departed && changes["news"]?.subscriptionCount == 0)
        #expect(changes["news"]?.appID == app)
        #expect(try b.occupiedChannels(app) == [ChannelSummary(name: "chat", subscriptionCount: 2, userCount: 0),
                                               ChannelSummary(name: "presence-room", subscriptionCount: 1, userCount: 1)])
        // Another app's channels are not this restore's business.
        #expect(try b.occupiedChannels("other-app") == [ChannelSummary(name: "news", subscriptionCount: 1, userCount: 0)])

        // The same state again: nothing changes.
        node.clear()
        a.restore(appID: app, shares)
        #expect(node.wait { $0.changes.count >= 2 })
        try a.barrier()
        #expect(node.changes.count == 2)
        for change in node.changes {
            #expect(change.transition == .unchanged && change.memberTransitions.isEmpty, "\(change)")
        }
        #expect(try b.presenceUserIDs(app, "presence-room") == ["ana"])
    }

    @Test func deadNodesShareIsSweptByOneSurvivor() throws {
        let cluster = try TestCluster()
        defer { cluster.stopAll() }
        let nodeA = TestNode(), nodeB = TestNode(), nodeC = TestNode()
        let a = try cluster.adapter("a", node: nodeA, leaseSeconds: 1)
        // The survivors' grace window (the sweeper's) is long enough for the arrivals checked after the sweep.
        let b = try cluster.adapter("b", node: nodeB, leaseSeconds: 1, graceMs: 10_000)
        let c = try cluster.adapter("c", node: nodeC, leaseSeconds: 1, graceMs: 10_000)
        defer { nodeA.freeze(false) }
        // A has renewed its lease: it is one of the cluster's nodes.
        #expect(nodeA.wait { $0.heartbeats >= 1 })
        _ = try a.record(app, "news", 1)
        _ = try a.record(app, "presence-room", 1, member: MemberShare(userID: "ana", connections: 1, info: "{}"))
        _ = try a.record(app, "presence-room", 2, member: MemberShare(userID: "bob", connections: 1, info: "{}"))
        _ = try b.record(app, "presence-room", 1, member: MemberShare(userID: "bob", connections: 1, info: "{}"))

        // A hangs: no more heartbeats, no stop().
        nodeA.freeze(true)
        let frozenAt = MonotonicClock.milliseconds
        let swept = { (node: TestNode) in node.changes.count >= 2 }
        #expect(nodeB.wait(timeoutMs: 5_000) { _ in swept(nodeB) || swept(nodeC) })
        let sweptAfter = MonotonicClock.milliseconds - frozenAt
        // Lease (1 s) + a heartbeat (1/3 s), with slack for a busy machine.
        #expect(sweptAfter < 4_000, "swept after \(sweptAfter) ms")
        // Only one survivor takes the share away; the other gets nothing, then or later.
        usleep(800_000)
        let sweeper = swept(nodeB) ? nodeB : nodeC
        let other = sweeper === nodeB ? nodeC : nodeB
        #expect(other.changes.isEmpty)
        #expect(sweeper.changes.count == 2)
        let changes = Dictionary(sweeper.changes.map { ($0.channel, $0) }, uniquingKeysWith: { first, _ in first })
        #expect(changes["news"]?.transition == .departed && changes["news"]?.subscriptionCount == 0)
        #expect(changes["presence-room"]?.transition == .unchanged)
        #expect(changes["presence-room"]?.memberEvents == ["ana": .departed])
        #expect(changes["presence-room"]?.subscriptionCount == 1 && changes["presence-room"]?.userCount == 1)
        #expect(try b.occupiedChannels(app) == [ChannelSummary(name: "presence-room", subscriptionCount: 1, userCount: 1)])
        #expect(try b.presenceUserIDs(app, "presence-room") == ["bob"])
        #expect(nodeA.restores == 0)

        // The sweeper announced those departures, so it holds their webhooks in the grace window:
        // an arrival within it (on the other survivor) goes back to the sweeper, not to the dead node.
        let (sweeperAdapter, otherAdapter) = sweeper === nodeB ? (b, c) : (c, b)
        let ana = try #require(try otherAdapter.record(app, "presence-room", 1, member: MemberShare(userID: "ana", connections: 1, info: "{}")))
        #expect(ana.memberEvents == ["ana": .returned(holder: sweeperAdapter.nodeID)])
        #expect(try otherAdapter.record(app, "news", 1)?.transition == .returned(holder: sweeperAdapter.nodeID))

        // A wakes up: the others took it for dead, so it writes its share again.
        nodeA.freeze(false)
        #expect(nodeA.wait { $0.restores >= 1 })
    }

    @Test func stopRemovesTheSharesAtOnce() throws {
        let cluster = try TestCluster()
        defer { cluster.stopAll() }
        let nodeA = TestNode(), nodeB = TestNode()
        let a = try cluster.adapter("a", node: nodeA, leaseSeconds: 1)
        let b = try cluster.adapter("b", node: nodeB, leaseSeconds: 1)
        #expect(nodeA.wait { $0.heartbeats >= 1 })
        _ = try a.record(app, "news", 1)
        _ = try a.record(app, "presence-room", 1, member: MemberShare(userID: "ana", connections: 1, info: "{}"))
        _ = try b.record(app, "presence-room", 1, member: MemberShare(userID: "bob", connections: 1, info: "{}"))

        cluster.stop(a)
        // Applied on the stopping node, before stop() returns.
        let changes = Dictionary(nodeA.changes.map { ($0.channel, $0) }, uniquingKeysWith: { first, _ in first })
        #expect(nodeA.changes.count == 2)
        #expect(changes["news"]?.transition == .departed)
        #expect(changes["presence-room"]?.transition == .unchanged && changes["presence-room"]?.memberEvents == ["ana": .departed])
        #expect(try b.occupiedChannels(app) == [ChannelSummary(name: "presence-room", subscriptionCount: 1, userCount: 1)])
        #expect(try b.presenceUserIDs(app, "presence-room") == ["bob"])
        // The stopped node is gone with its webhooks (it writes them out as it stops): nobody is
        // left to hold those departures, so arrivals right after are plain arrivals.
        #expect(try b.record(app, "news", 1)?.transition == .arrived)
        let ana = try #require(try b.record(app, "presence-room", 2, member: MemberShare(userID: "ana", connections: 1, info: "{}")))
        #expect(ana.memberEvents == ["ana": .arrived])
        // Nobody sweeps the stopped node later: its lease and node entry are gone.
        let beats = nodeB.heartbeats
        #expect(nodeB.wait { $0.heartbeats >= beats + 3 })
        #expect(nodeB.changes.isEmpty)
    }

    @Test func departuresOfAStoppedNodeCancelNothing() throws {
        let cluster = try TestCluster()
        defer { cluster.stopAll() }
        let nodeA = TestNode(), nodeB = TestNode()
        let a = try cluster.adapter("a", node: nodeA, graceMs: 10_000)
        let b = try cluster.adapter("b", node: nodeB, graceMs: 10_000)
        #expect(nodeA.wait { $0.heartbeats >= 1 } && nodeB.wait { $0.heartbeats >= 1 })
        let ana = MemberShare(userID: "ana", connections: 1, info: "{}")
        _ = try a.record(app, "presence-room", 1, member: ana)
        // Its clients leave as A drains: A holds these departures' webhooks, then sends them as it stops.
        #expect(try a.record(app, "presence-room", 0, member: MemberShare(userID: "ana", connections: 0, info: "null"))?.transition == .departed)
        cluster.stop(a)
        // Well within the grace window, but A is gone: nothing to cancel there, so plain arrivals.
        let back = try #require(try b.record(app, "presence-room", 1, member: ana))
        #expect(back.transition == .arrived && back.memberEvents == ["ana": .arrived])
    }

    @Test func heartbeatsShareConnectionCounts() throws {
        let cluster = try TestCluster()
        defer { cluster.stopAll() }
        let nodeA = TestNode(counts: ["app1": 3]), nodeB = TestNode(counts: ["app1": 5, "app2": 0])
        let a = try cluster.adapter("a", node: nodeA, leaseSeconds: 1)
        _ = try cluster.adapter("b", node: nodeB, leaseSeconds: 1)
        // Heartbeats every 1/3 s: a couple of them, with slack.
        #expect(nodeB.wait(timeoutMs: 3_000) { $0.others.last == ["app1": 3] })
        #expect(nodeA.wait(timeoutMs: 3_000) { $0.others.last == ["app1": 5] })
        nodeA.set(counts: ["app1": 1, "app2": 4])
        #expect(nodeB.wait(timeoutMs: 3_000) { $0.others.last == ["app1": 1, "app2": 4] })
        // A stopped node's connections no longer count.
        cluster.stop(a)
        #expect(nodeB.wait(timeoutMs: 3_000) { $0.others.last == [:] })
    }

    @Test func queriesAnswerForTheWholeCluster() throws {
        let cluster = try TestCluster()
        defer { cluster.stopAll() }
        let a = try cluster.adapter("a"), b = try cluster.adapter("b")
        _ = try a.record(app, "news", 2)
        _ = try b.record(app, "news", 1)
        _ = try a.record(app, "chat", 1)
        _ = try a.record(app, "gone", 1)
        _ = try a.record(app, "gone", 0)
        _ = try a.record(app, "presence-room", 1, member: MemberShare(userID: "zoe", connections: 1, info: "{}"))
        _ = try a.record(app, "presence-room", 2, member: MemberShare(userID: "bob", connections: 1, info: "{}"))
        _ = try b.record(app, "presence-room", 1, member: MemberShare(userID: "bob", connections: 1, info: "{}"))
        _ = try b.record(app, "presence-room", 2, member: MemberShare(userID: "ana", connections: 1, info: "{}"))
        _ = try b.record("other", "elsewhere", 1)

        let expected = [ChannelSummary(name: "chat", subscriptionCount: 1, userCount: 0),
                        ChannelSummary(name: "news", subscriptionCount: 3, userCount: 0),
                        ChannelSummary(name: "presence-room", subscriptionCount: 4, userCount: 3)]
        #expect(try a.occupiedChannels(app) == expected)
        #expect(try b.occupiedChannels(app) == expected)
        #expect(try a.occupiedChannels("other") == [ChannelSummary(name: "elsewhere", subscriptionCount: 1, userCount: 0)])
        #expect(try a.occupiedChannels("nobody") == [])
        #expect(try b.channel(app, "news") == ChannelSummary(name: "news", subscriptionCount: 3, userCount: 0))
        #expect(try b.channel(app, "presence-room") == ChannelSummary(name: "presence-room", subscriptionCount: 4, userCount: 3))
        #expect(try b.channel(app, "gone") == ChannelSummary(name: "gone", subscriptionCount: 0, userCount: 0))
        #expect(try b.channel(app, "never") == ChannelSummary(name: "never", subscriptionCount: 0, userCount: 0))
        #expect(try a.presenceUserIDs(app, "presence-room") == ["ana", "bob", "zoe"])
        #expect(try a.presenceUserIDs(app, "news") == [])
        #expect(try a.presenceUserIDs(app, "never") == [])
    }

    @Test func scriptsRunAgainAfterRedisForgetsThem() throws {
        let cluster = try TestCluster()
        defer { cluster.stopAll() }
        let a = try cluster.adapter("a")
        #expect(try a.record(app, "news", 1)?.transition == .arrived)
        // SCRIPT FLUSH: every EVALSHA now answers NOSCRIPT; the adapter sends the whole script once.
        let admin = try BlockingConnection(port: cluster.url.port)
        #expect(try admin.roundTrip(["SCRIPT", "FLUSH"]) == .simpleString("OK"))
        #expect(try a.record(app, "news", 2)?.subscriptionCount == 2)
        #expect(try a.record(app, "news", 0)?.transition == .departed)
    }

    @Test func memberChangesReachEveryNodeInVersionOrder() throws {
        let cluster = try TestCluster()
        defer { cluster.stopAll() }
        let nodeA = TestNode(), nodeB = TestNode()
        let a = try cluster.adapter("a", node: nodeA)
        let b = try cluster.adapter("b", node: nodeB)
        // Both subscribers listen once connected: probe until both hear one.
        let probe = ClusterMessage.terminateUser(appID: "probe", userID: "-")
        #expect(eventually {
            a.broadcast(probe); b.broadcast(probe)
            usleep(20_000)
            return !nodeA.messages.isEmpty && !nodeB.messages.isEmpty
        })
        usleep(50_000)
        nodeA.clear(); nodeB.clear()

        let ana = MemberShare(userID: "ana", connections: 1, info: #"{"n":1}"#)
        let gone = MemberShare(userID: "ana", connections: 0, info: "null")
        let joined = try #require(try a.record(ChannelShare(appID: app, channel: "presence-x", subscriptions: 1, members: [ana],
                                                            joiner: "1.1")))
        let left = try #require(try b.record(app, "presence-x", 0, member: gone))   // B never had her: unchanged
        #expect(left.memberEvents.isEmpty)
        let back = try #require(try b.record(ChannelShare(appID: app, channel: "presence-x", subscriptions: 1, members: [ana],
                                                          joiner: "2.2")))
        #expect(back.memberEvents.isEmpty)   // still on A
        let departed = try #require(try a.record(app, "presence-x", 0, member: gone))
        #expect(departed.memberEvents.isEmpty)   // still on B
        let last = try #require(try b.record(app, "presence-x", 0, member: gone))
        #expect(last.memberEvents == ["ana": .departed])

        // From the shared state itself: to every node, the one that made the change too, in order.
        let expected: [ClusterMessage] = [
            .memberChange(appID: app, channel: "presence-x", userID: "ana", added: true, info: #"{"n":1}"#, excluded: "1.1",
                          version: joined.membersVersion),
            .memberChange(appID: app, channel: "presence-x", userID: "ana", added: false, info: nil, excluded: nil,
                          version: last.membersVersion),
        ]
        #expect(joined.membersVersion < last.membersVersion)
        for node in [nodeA, nodeB] {
            #expect(node.wait { $0.messages.filter { $0 != probe } == expected })
        }
    }

    @Test func eventsReachEveryOtherNode() throws {
        let cluster = try TestCluster()
        defer { cluster.stopAll() }
        let nodeA = TestNode(), nodeB = TestNode(), nodeC = TestNode()
        let a = try cluster.adapter("a", node: nodeA)
        _ = try cluster.adapter("b", node: nodeB)
        _ = try cluster.adapter("c", node: nodeC)
        // The subscribers subscribe once connected: probe until both hear.
        let probe = ClusterMessage.terminateUser(appID: "probe", userID: "-")
        #expect(eventually {
            a.broadcast(probe)
            usleep(20_000)
            return !nodeB.messages.isEmpty && !nodeC.messages.isEmpty
        })
        usleep(50_000)
        nodeB.clear(); nodeC.clear()

        let message = ClusterMessage.userEvent(appID: app, userID: "ana", envelope: Array("{}".utf8))
        a.broadcast(message)
        #expect(nodeB.wait { $0.messages.filter { $0 != probe } == [message] })
        #expect(nodeC.wait { $0.messages.filter { $0 != probe } == [message] })
        // Not to the sender itself.
        usleep(100_000)
        #expect(nodeA.messages.isEmpty)
    }
}
