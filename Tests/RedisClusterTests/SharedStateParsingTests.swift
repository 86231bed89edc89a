import Bridge
import Redis
@testable import RedisCluster
import Testing

struct SharedStateKeysTests {
    @Test(arguments: ["bridge", "bridge:prod:eu", "a:", ""])
    func channelKeysRoundTrip(prefix: String) {
        let keys = SharedStateKeys(prefix: prefix)
        for app in ["1", "app:1", "a:b:c", ":", ""] {
            for channel in ["news", "presence-room", "private-encrypted-x;y", ""] {
                let key = keys.channel(app: app, channel)
                let parsed = keys.channelOf(key: key)
                #expect(parsed?.app == app && parsed?.channel == channel, "\(key) → \(String(describing: parsed))")
            }
        }
    }

    @Test func otherKeysAreNotChannels() {
        let keys = SharedStateKeys(prefix: "bridge:test")
        #expect(keys.channelOf(key: keys.channelSet(app: "1")) == nil)
        #expect(keys.channelOf(key: keys.events) == nil)
        #expect(keys.channelOf(key: keys.index(node: "aaaaaaaaaaaaaaaa")) == nil)
        // The prefix alone, or an app with no channel part.
        #expect(keys.channelOf(key: keys.channelPrefix) == nil)
        #expect(keys.channelOf(key: keys.channelPrefix + "app") == nil)
        // Another cluster's prefix.
        #expect(SharedStateKeys(prefix: "other").channelOf(key: keys.channel(app: "1", "news")) == nil)
    }
}

struct SharedStateReplyTests {
    @Test func transitions() {
        #expect(SharedStateReply.transition("") == .unchanged)
        #expect(SharedStateReply.transition("+") == .arrived)
        #expect(SharedStateReply.transition("-") == .departed)
        #expect(SharedStateReply.transition("~abc") == .returned(holder: "abc"))
        #expect(SharedStateReply.transition("~0123456789abcdef") == .returned(holder: "0123456789abcdef"))
        for malformed in ["x", "+x", "-x", "~", "++", " ", "+ "] {
            #expect(SharedStateReply.transition(malformed) == nil, "\(malformed)")
        }
    }

    static let keys = SharedStateKeys(prefix: "p:q")

    static func bulk(_ text: String) -> RESPValue { .bulkString(Array(text.utf8)) }

    /// A well-formed change reply with one field replaced.
    static func reply(replacing index: Int? = nil, with value: RESPValue = .null) -> RESPValue {
        var fields: [RESPValue] = [
            bulk(keys.channel(app: "app:1", "presence-room")), .integer(3), .integer(2), bulk("~aaaaaaaaaaaaaaaa"),
            .array([bulk("ana"), bulk("+"), bulk("{}"), bulk("bob"), bulk("-"), bulk("")]),
            .array([bulk("ana"), bulk("{}"), bulk("zoe"), bulk("null")]),
            .integer(1_712_345_678_901_234),
        ]
        if let index { fields[index] = value }
        return .array(fields)
    }

    @Test func wellFormedChange() throws {
        let change = try #require(SharedStateReply.change(Self.reply(), keys: Self.keys))
        #expect(change.appID == "app:1" && change.channel == "presence-room")
        #expect(change.subscriptionCount == 3 && change.userCount == 2)
        #expect(change.transition == .returned(holder: "aaaaaaaaaaaaaaaa"))
        #expect(change.memberTransitions == [.init(userID: "ana", transition: .arrived, info: "{}"),
                                             .init(userID: "bob", transition: .departed, info: "")])
        #expect(change.members.map(\.id) == ["ana", "zoe"] && change.members.map(\.info) == ["{}", "null"])
        #expect(change.membersVersion == 1_712_345_678_901_234)
        // Empty lists are fine.
        let empty = RESPValue.array([Self.bulk(Self.keys.channel(app: "1", "c")), .integer(0), .integer(0), Self.bulk(""),
                                     .array([]), .array([]), .integer(0)])
        #expect(SharedStateReply.change(empty, keys: Self.keys)?.transition == .unchanged)
    }

    static let malformed: [(String, RESPValue)] = [
        ("not an array", bulk("x")),
        ("null", .null),
        ("six fields", .array(Array(reply().array!.prefix(6)))),
        ("eight fields", .array(reply().array! + [.integer(0)])),
        ("key of another prefix", reply(replacing: 0, with: bulk("other:ch:1:c"))),
        ("key not a string", reply(replacing: 0, with: .integer(1))),
        ("total as text", reply(replacing: 1, with: bulk("3"))),
        ("users missing", reply(replacing: 2, with: .null)),
        ("bad channel event", reply(replacing: 3, with: bulk("+x"))),
        ("channel event not a string", reply(replacing: 3, with: .integer(1))),
        ("events not in threes", reply(replacing: 4, with: .array([bulk("ana"), bulk("+")]))),
        ("bad member event", reply(replacing: 4, with: .array([bulk("ana"), bulk("?"), bulk("{}")]))),
        ("member id not a string", reply(replacing: 4, with: .array([.integer(1), bulk("+"), bulk("{}")]))),
        ("events not an array", reply(replacing: 4, with: bulk(""))),
        ("members not in pairs", reply(replacing: 5, with: .array([bulk("ana")]))),
        ("member info not a string", reply(replacing: 5, with: .array([bulk("ana"), .null]))),
        ("version as text", reply(replacing: 6, with: bulk("5"))),
    ]

    @Test(arguments: malformed)
    func malformedChangesAreRefused(name: String, value: RESPValue) {
        #expect(SharedStateReply.change(value, keys: Self.keys) == nil, "\(name)")
    }

    @Test func heartbeatAndSummaries() throws {
        let beat = try #require(SharedStateReply.heartbeat(.array([.integer(1), Self.bulk("e1"), .array([Self.bulk("bbbbbbbbbbbbbbbb")]),
                                                                   .array([Self.bulk("app1"), .integer(3)])])))
        #expect(beat.renewed && beat.epoch == "e1" && beat.deadNodes == ["bbbbbbbbbbbbbbbb"] && beat.otherNodesConnections == ["app1": 3])
        #expect(SharedStateReply.heartbeat(.array([.integer(1), Self.bulk("e1"), .array([]), .array([Self.bulk("app1")])])) == nil)
        #expect(SharedStateReply.summaries(.array([Self.bulk("b"), .integer(1), .integer(0), Self.bulk("a"), .integer(2), .integer(1)]))
                == [ChannelSummary(name: "a", subscriptionCount: 2, userCount: 1), ChannelSummary(name: "b", subscriptionCount: 1, userCount: 0)])
        #expect(SharedStateReply.summaries(.array([Self.bulk("b"), .integer(1)])) == nil)
    }
}
