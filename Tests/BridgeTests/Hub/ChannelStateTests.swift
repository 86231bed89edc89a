@testable import Bridge
import Testing

@Suite struct ChannelStateTests {
    @Test func presenceCountsUsersNotConnections() throws {
        var state = ChannelState(loopCount: 2)
        let first = try state.join(loop: 0, member: ("1", #"{"name":"Ann"}"#), maxMembers: 100)
        #expect(first.occupied && first.firstOfUser)
        let secondTab = try state.join(loop: 1, member: ("1", #"{"name":"Ann"}"#), maxMembers: 100)
        #expect(!secondTab.occupied && !secondTab.firstOfUser)
        #expect(state.userCount == 1 && state.subscribers == 2 && state.subscribersPerLoop == [1, 1])

        let leftOne = state.leave(loop: 0, memberID: "1")
        #expect(!leftOne.vacated && !leftOne.lastOfUser)
        let leftAll = state.leave(loop: 1, memberID: "1")
        #expect(leftAll.vacated && leftAll.lastOfUser && state.userCount == 0)
    }

    @Test func presenceJSONListsEveryMemberWithItsInfo() throws {
        var state = ChannelState(loopCount: 1)
        _ = try state.join(loop: 0, member: ("2", "null"), maxMembers: 100)
        _ = try state.join(loop: 0, member: ("1", #"{"name":"A"}"#), maxMembers: 100)
        #expect(state.presenceJSON == #"{"presence":{"ids":["1","2"],"hash":{"1":{"name":"A"},"2":null},"count":2}}"#)
    }

    @Test func aFullChannelRefusesNewUsersButNotMoreTabsOfAMember() throws {
        var state = ChannelState(loopCount: 1)
        _ = try state.join(loop: 0, member: ("1", "null"), maxMembers: 1)
        #expect(throws: ChannelState.JoinRefusal.self) { try state.join(loop: 0, member: ("2", "null"), maxMembers: 1) }
        #expect(state.subscribers == 1)
        _ = try state.join(loop: 0, member: ("1", "null"), maxMembers: 1)
        #expect(state.subscribers == 2)
    }
}
