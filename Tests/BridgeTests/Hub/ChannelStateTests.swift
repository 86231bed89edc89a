@testable import Bridge
import Testing

/// This node's share of a channel, as the hub keeps it and records it with the authority.
@Suite struct ChannelStateTests {
    static func member(_ id: String, _ info: String = "null") -> PresenceIdentity { PresenceIdentity(userID: id, info: info) }

    @Test func presenceCountsUsersNotConnections() throws {
        var state = ChannelState(loopCount: 2)
        let first = try state.join(loop: 0, member: Self.member("1", #"{"name":"Ann"}"#), maxMembers: 100)
        let secondTab = try state.join(loop: 1, member: Self.member("1", #"{"name":"Ann"}"#), maxMembers: 100)
        #expect(first && !secondTab)
        #expect(state.userCount == 1 && state.subscribers == 2 && state.subscribersPerLoop == [1, 1])
        #expect(state.share(appID: "a", channel: "presence-x", member: "1")
            == ChannelShare(appID: "a", channel: "presence-x", subscriptions: 2,
                            members: [MemberShare(userID: "1", connections: 2, info: #"{"name":"Ann"}"#)]))

        let leftOne = state.leave(loop: 0, memberID: "1")
        let leftAll = state.leave(loop: 1, memberID: "1")
        #expect(!leftOne && leftAll)
        #expect(state.userCount == 0 && state.subscribers == 0 && state.subscribersPerLoop == [0, 0])
        // The member who left is written with no connections, so the authority sees her go.
        #expect(state.share(appID: "a", channel: "presence-x", member: "1").members
            == [MemberShare(userID: "1", connections: 0, info: "null")])
        #expect(state.isEmpty(now: 0))
    }

    @Test func presenceJSONListsEveryMemberWithItsInfo() throws {
        var state = ChannelState(loopCount: 1)
        _ = try state.join(loop: 0, member: Self.member("2"), maxMembers: 100)
        _ = try state.join(loop: 0, member: Self.member("1", #"{"name":"A"}"#), maxMembers: 100)
        #expect(state.presenceJSON == #"{"presence":{"ids":["1","2"],"hash":{"1":{"name":"A"},"2":null},"count":2}}"#)
    }

    @Test func aFullChannelRefusesNewUsersButNotMoreTabsOfAMember() throws {
        var state = ChannelState(loopCount: 1)
        _ = try state.join(loop: 0, member: Self.member("1"), maxMembers: 1)
        #expect(throws: ChannelState.JoinRefusal.self) { try state.join(loop: 0, member: Self.member("2"), maxMembers: 1) }
        #expect(state.subscribers == 1)
        _ = try state.join(loop: 0, member: Self.member("1"), maxMembers: 1)
        #expect(state.subscribers == 2)
    }

    @Test func aCachedEventKeepsAnEmptyChannelUntilItExpires() {
        var state = ChannelState(loopCount: 1)
        state.cacheExpiresAt = 10
        #expect(!state.isEmpty(now: 9))
        #expect(state.isEmpty(now: 10))
    }
}
