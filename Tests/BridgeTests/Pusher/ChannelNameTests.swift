import Bridge
import Testing

@Suite struct ChannelNameTests {
    @Test(arguments: [
        ("chat", ChannelName.Kind.public, false),
        ("my-cache-x", .public, false),
        ("cache-news", .public, true),
        ("private-room", .private, false),
        ("private-cache-room", .private, true),
        ("presence-room", .presence, false),
        ("presence-cache-room", .presence, true),
        ("private-encrypted-room", .encrypted, false),
        ("private-encrypted-cache-room", .encrypted, true),
        ("#server-to-user-42", .serverToUser(userID: "42"), false),
        ("privateroom", .public, false),
    ])
    func kindFollowsTheMostSpecificPrefix(name: String, kind: ChannelName.Kind, cache: Bool) throws {
        let channel = try #require(ChannelName(name))
        #expect(channel.kind == kind)
        #expect(channel.isCache == cache)
    }

    @Test func rulesPerKind() throws {
        #expect(try #require(ChannelName("private-a")).requiresAuth)
        #expect(try #require(ChannelName("presence-a")).allowsClientEvents)
        #expect(!(try #require(ChannelName("private-encrypted-a")).allowsClientEvents))
        #expect(!(try #require(ChannelName("public-a")).requiresAuth))
        #expect(!(try #require(ChannelName("cache-a")).allowsClientEvents))
    }

    @Test(arguments: ["", "has space", "slash/", "hash#tag", "#server-to-user-", "#other", "ünicode", "quote\"", "tab\t"])
    func rejectsInvalidNames(name: String) {
        #expect(ChannelName(name) == nil)
    }

    @Test func lengthLimit() {
        let allowed = "-_=@,.;"
        #expect(ChannelName("a" + allowed) != nil)
        #expect(ChannelName(String(repeating: "x", count: 164)) != nil)
        #expect(ChannelName(String(repeating: "x", count: 165)) == nil)
        #expect(ChannelName(String(repeating: "x", count: 200), maxLength: 200) != nil)
    }
}
