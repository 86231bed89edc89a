import Bridge
import Glibc
import Redis
import RedisCluster
import System
import Testing
import RedisServerSupport

/// Redis losing its data (restarted empty), with its own server: the other suites' tests must not see it go.
@Suite(.redisServer) struct RedisRestartTests {
    let app = "app1"

    @Test func nodesWriteTheirSharesAgainAfterRedisLostItsData() throws {
        let server = try RedisServerTrait.server
        let cluster = try TestCluster()
        defer { cluster.stopAll() }
        let nodeA = TestNode(), nodeB = TestNode()
        let a = try cluster.adapter("a", node: nodeA, leaseSeconds: 1)
        let b = try cluster.adapter("b", node: nodeB, leaseSeconds: 1)
        #expect(nodeA.wait { $0.heartbeats >= 1 } && nodeB.wait { $0.heartbeats >= 1 })
        let ana = MemberShare(userID: "ana", connections: 1, info: #"{"n":1}"#)
        let bob = MemberShare(userID: "bob", connections: 1, info: "null")
        _ = try a.record(app, "news", 1)
        _ = try a.record(app, "presence-room", 1, member: ana)
        _ = try b.record(app, "presence-room", 1, member: bob)
        let sharesA = [ChannelShare(appID: app, channel: "news", subscriptions: 1),
                       ChannelShare(appID: app, channel: "presence-room", subscriptions: 1, members: [ana])]
        let sharesB = [ChannelShare(appID: app, channel: "presence-room", subscriptions: 1, members: [bob])]
        // As the hub does: restoreShares writes the node's whole share again.
        nodeA.onRestore { a.restore(appID: "app1", sharesA) }
        nodeB.onRestore { b.restore(appID: "app1", sharesB) }
        #expect(nodeA.restores == 0 && nodeB.restores == 0)

        server.kill()
        try server.start()
        // A few heartbeats (1/3 s each) after the reconnect.
        #expect(nodeA.wait(timeoutMs: 6_000) { $0.restores >= 1 })
        #expect(nodeB.wait(timeoutMs: 6_000) { $0.restores >= 1 })
        let expected = [ChannelSummary(name: "news", subscriptionCount: 1, userCount: 0),
                        ChannelSummary(name: "presence-room", subscriptionCount: 2, userCount: 2)]
        #expect(eventually { (try? a.occupiedChannels(app)) == expected })
        #expect(try b.presenceUserIDs(app, "presence-room") == ["ana", "bob"])
        #expect(try b.record(app, "presence-room", 1, member: bob, wantsMembers: true)?.memberInfos == ["ana": #"{"n":1}"#, "bob": "null"])
        // Those channels and members were announced before Redis lost them: not again.
        #expect(nodeA.wait { $0.changes.count >= 2 } && nodeB.wait { $0.changes.count >= 1 })
        for change in nodeA.changes + nodeB.changes {
            #expect(change.transition == .unchanged, "\(change)")
            #expect(change.memberTransitions.allSatisfy { $0.transition == .unchanged }, "\(change)")
        }
        // And the cluster works on: a leave is still a departure.
        #expect(try a.record(app, "news", 0)?.transition == .departed)
    }
}

/// Nothing listens where the adapter looks for Redis.
@Suite struct UnreachableRedisTests {
    @Test func everyAnswerIsNilAndComesAtOnce() throws {
        let cluster = TestCluster(url: RedisURL(host: "127.0.0.1", port: try freeLoopbackPort()))
        defer { cluster.stopAll() }
        let node = TestNode()
        let a = try cluster.adapter("a", node: node)
        let started = MonotonicClock.milliseconds
        for _ in 0..<2 {
            #expect(try a.occupiedChannels("app1") == nil)
            #expect(try a.channel("app1", "news") == nil)
            #expect(try a.presenceUserIDs("app1", "presence-room") == nil)
            #expect(try a.record("app1", "news", 1) == nil)
        }
        a.broadcast(.terminateUser(appID: "app1", userID: "u"))
        #expect(MonotonicClock.milliseconds - started < 3_000)
        #expect(a.problem != nil)
        #expect(node.heartbeats == 0 && node.restores == 0)
        let stopping = MonotonicClock.milliseconds
        cluster.stop(a)
        #expect(MonotonicClock.milliseconds - stopping < 2_500)
        #expect(node.changes.isEmpty)
    }
}
