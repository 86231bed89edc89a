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
        .memberChange(appID: "1", channel: "presence-room", userID: "ana", added: true, info: #"{"name":"Ana"}"#,
                      excluded: "123.456", version: 1_712_345_678_901_234),
        .memberChange(appID: "a:b", channel: "presence-x", userID: "42", added: false, info: nil, excluded: nil, version: 0),
        .memberChange(appID: "", channel: "", userID: "ü", added: true, info: "", excluded: "", version: -1),
        .heldArrival(appID: "1", holder: "0123456789abcdef", channel: "presence-room", userID: "ana"),
        .heldArrival(appID: "1001", holder: "fedcba9876543210", channel: "general", userID: nil),
        .heldArrival(appID: "", holder: "", channel: "", userID: ""),
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

    @Test func memberChangeVersionMustBeANumber() {
        let good = ClusterMessage.memberChange(appID: "1", channel: "presence-c", userID: "u", added: false, info: nil,
                                               excluded: nil, version: 7).encoded()
        #expect(good.last == UInt8(ascii: "7"))
        var bytes = good
        bytes[bytes.count - 1] = UInt8(ascii: "x")
        #expect(ClusterMessage(decoding: bytes) == nil)
        // An absent version (length 0xFFFFFFFF) is refused too: only the info and the excluded connection may be absent.
        bytes = Array(good.dropLast(5)) + [0xFF, 0xFF, 0xFF, 0xFF]
        #expect(ClusterMessage(decoding: bytes) == nil)
    }

    @Test func memberChangeAddedIsOneOrZero() {
        var bytes = ClusterMessage.memberChange(appID: "1", channel: "presence-c", userID: "u", added: true, info: nil,
                                                excluded: nil, version: 7).encoded()
        // kind, then app "1" (4 + 1), channel (4 + 10), user (4 + 1), then the flag's length and byte.
        let flag = 1 + 5 + 14 + 5 + 4
        #expect(bytes[flag] == UInt8(ascii: "1"))
        bytes[flag] = UInt8(ascii: "2")
        #expect(ClusterMessage(decoding: bytes) == nil)
    }

    @Test func heldArrivalNeedsItsHolderAndChannel() {
        // An absent holder (length 0xFFFFFFFF) where only the user id may be absent.
        var bytes: [UInt8] = [4]
        for field: [UInt8]? in [Array("1".utf8), nil, Array("c".utf8), nil] {
            let length = field.map { UInt32($0.count) } ?? UInt32.max
            withUnsafeBytes(of: length.littleEndian) { bytes.append(contentsOf: $0) }
            if let field { bytes.append(contentsOf: field) }
        }
        #expect(ClusterMessage(decoding: bytes) == nil)
        bytes = [4]
        for field: [UInt8]? in [Array("1".utf8), Array("h".utf8), Array("c".utf8), nil] {
            let length = field.map { UInt32($0.count) } ?? UInt32.max
            withUnsafeBytes(of: length.littleEndian) { bytes.append(contentsOf: $0) }
            if let field { bytes.append(contentsOf: field) }
        }
        #expect(ClusterMessage(decoding: bytes) == .heldArrival(appID: "1", holder: "h", channel: "c", userID: nil))
    }
}
