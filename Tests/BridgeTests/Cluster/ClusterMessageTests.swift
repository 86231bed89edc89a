import Testing
@testable import Bridge

struct ClusterMessageTests {
    static let messages: [ClusterMessage] = [
        .channelEvent(appID: "1", channel: "general", envelope: Array(#"{"event":"e","channel":"general","data":"{}"}"#.utf8),
                      excluded: nil, cacheTTL: nil, dataString: nil),
        .channelEvent(appID: "1001", channel: "cache-news", envelope: Array("{…}".utf8), excluded: "123.456",
                      cacheTTL: 1800, dataString: "héllo"),
        .channelEvent(appID: "a", channel: "c", envelope: [], excluded: "", cacheTTL: 0, dataString: ""),
        .userEvent(appID: "1", userID: "ana", envelope: Array(#"{"event":"x"}"#.utf8)),
        .terminateUser(appID: "7", userID: "42"),
    ]

    @Test(arguments: messages)
    func messagesRoundTrip(message: ClusterMessage) {
        #expect(ClusterMessage(decoding: message.encoded()) == message)
    }

    @Test(arguments: messages)
    func everyTruncationIsRefused(message: ClusterMessage) {
        let bytes = message.encoded()
        for length in 0..<bytes.count {
            #expect(ClusterMessage(decoding: Array(bytes[..<length])) == nil, "accepted \(length) of \(bytes.count) bytes")
        }
        #expect(ClusterMessage(decoding: bytes + [0]) == nil, "accepted a trailing byte")
    }

    @Test func unknownKindsAndBadTextAreRefused() {
        #expect(ClusterMessage(decoding: [9]) == nil)
        var bytes = ClusterMessage.userEvent(appID: "1", userID: "u", envelope: []).encoded()
        bytes[5] = 0xFF  // the app id's only byte: not UTF-8
        #expect(ClusterMessage(decoding: bytes) == nil)
    }
}
