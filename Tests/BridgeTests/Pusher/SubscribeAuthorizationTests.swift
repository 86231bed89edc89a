@testable import Bridge
import Support
import Testing

/// The subscribe auth table: every channel kind, with and without seed mode and signin, and every refusal.
@Suite struct SubscribeAuthorizationTests {
    static let config = AppConfig(id: "1", key: "app-key", secret: "app-secret")
    static let signer = ChannelAuth(appKey: "app-key", secret: "app-secret")
    static let socketID = "123.456"

    static func credentials(user: String? = nil, seed: Bool = false, seedUser: String? = nil) -> SubscribeAuthorization.Credentials {
        SubscribeAuthorization.Credentials(socketID: socketID, signedInUser: user, seed: seed, seedUserID: seedUser)
    }

    static func signed(_ channel: String, channelData: String? = nil) -> String {
        let stringToSign = ChannelAuth.stringToSign(socketID: socketID, channel: channel, channelData: channelData)
        return "app-key:" + signer.signature(of: stringToSign)
    }

    static func authorize(_ channel: String, auth: String? = nil, channelData: String? = nil, config: AppConfig = config,
                          _ credentials: SubscribeAuthorization.Credentials = credentials())
        -> Result<SubscribeAuthorization.Grant, SubscribeRefusal> {
        SubscribeAuthorization.authorize(.init(channel: channel, auth: auth, channelData: channelData), config: config,
                                         credentials: credentials)
    }

    static func refusal(_ result: Result<SubscribeAuthorization.Grant, SubscribeRefusal>) -> SubscribeRefusal? {
        if case .failure(let refusal) = result { return refusal }
        return nil
    }

    @Test func publicAndCacheChannelsNeedNothing() throws {
        #expect(try Self.authorize("chat").get() == .init(channel: ChannelName("chat")!, member: nil))
        #expect(try Self.authorize("cache-prices").get().channel.isCache)
    }

    @Test func privateChannelsNeedTheAppsSignature() throws {
        #expect(try Self.authorize("private-room", auth: Self.signed("private-room")).get().member == nil)
        #expect(Self.refusal(Self.authorize("private-room")) == .badSignature(expected: "123.456:private-room", given: ""))
        // A signature for another channel, for another socket, or under another key does not open this one.
        #expect(Self.refusal(Self.authorize("private-room", auth: Self.signed("private-other"))) != nil)
        let otherKey = "other-key:" + Self.signer.signature(of: "123.456:private-room")
        #expect(Self.refusal(Self.authorize("private-room", auth: otherKey)) != nil)
    }

    @Test func encryptedChannelsNeedTheSignatureEvenInSeedMode() throws {
        let seed = Self.credentials(seed: true)
        #expect(Self.refusal(Self.authorize("private-encrypted-x", seed)) == .badSignature(expected: "123.456:private-encrypted-x", given: ""))
        #expect(try Self.authorize("private-encrypted-x", auth: Self.signed("private-encrypted-x"), seed).get().channel.kind == .encrypted)
        // Seed mode covers private channels.
        #expect(try Self.authorize("private-room", seed).get().channel.kind == .private)
    }

    @Test func presenceChannelsNeedSignedChannelData() throws {
        let data = #"{"user_id":"u1","user_info":{"name":"Ann"}}"#
        let grant = try Self.authorize("presence-room", auth: Self.signed("presence-room", channelData: data), channelData: data).get()
        #expect(grant.member == PresenceIdentity(userID: "u1", info: #"{"name":"Ann"}"#))
        #expect(Self.refusal(Self.authorize("presence-room", auth: Self.signed("presence-room"))) == .missingChannelData)
        // The signature covers channel_data: changing the user breaks it.
        let forged = #"{"user_id":"admin"}"#
        #expect(Self.refusal(Self.authorize("presence-room", auth: Self.signed("presence-room", channelData: data), channelData: forged))
            == .badSignature(expected: "123.456:presence-room:" + forged, given: Self.signed("presence-room", channelData: data)))
    }

    @Test func seedPresenceUsesTheClientsUserIDOrTheSocketID() throws {
        let named = try Self.authorize("presence-room", Self.credentials(seed: true, seedUser: "pat \"q\"")).get()
        #expect(named.member == PresenceIdentity(userID: "pat \"q\"", info: "null"))
        let anonymous = try Self.authorize("presence-room", Self.credentials(seed: true)).get()
        #expect(anonymous.member?.userID == Self.socketID)
    }

    @Test func serverToUserChannelsOnlyForTheSignedInUser() throws {
        #expect(try Self.authorize("#server-to-user-7", Self.credentials(user: "7")).get().channel.kind == .serverToUser(userID: "7"))
        #expect(Self.refusal(Self.authorize("#server-to-user-7", Self.credentials(user: "8")))
            == .notSignedInAs("7", channel: "#server-to-user-7"))
        #expect(Self.refusal(Self.authorize("#server-to-user-7")) == .notSignedInAs("7", channel: "#server-to-user-7"))
        // Seed mode does not sign anyone in.
        #expect(Self.refusal(Self.authorize("#server-to-user-7", Self.credentials(seed: true, seedUser: "7"))) != nil)
    }

    @Test func namesAreCheckedFirst() {
        #expect(Self.refusal(Self.authorize("bad name")) == .invalidName("bad name"))
        #expect(Self.refusal(Self.authorize("")) == .invalidName(""))
        var short = Self.config
        short.maxChannelNameLength = 8
        #expect(Self.refusal(Self.authorize("private-long", config: short)) == .nameTooLong(limit: 8))
    }

    @Test func refusalsCarryPushersTypesAndStatuses() {
        let table: [(SubscribeRefusal, String, Int, Int?)] = [
            (.invalidName("x y"), "InvalidChannel", 400, 4009),
            (.nameTooLong(limit: 8), "LimitReached", 4009, 4009),
            (.notSignedInAs("7", channel: "#server-to-user-7"), "AuthError", 401, 4009),
            (.badSignature(expected: "a", given: "k:b"), "AuthError", 401, 4009),
            (.missingChannelData, "AuthError", 401, 4009),
            (.channelDataNotAnObject, "InvalidChannelData", 400, 4009),
            (.missingUserID, "InvalidChannelData", 400, 4009),
            (.userIDTooLong(limit: 128), "LimitReached", 4009, 4009),
            (.userInfoTooLarge(limit: 1024), "LimitReached", 4009, 4009),
            (.rateLimited(perSecond: 50), "LimitReached", 429, 4301),
            (.overMemory, "OverCapacity", 503, 4100),
            (.tooManySubscriptions(limit: 1000), "LimitReached", 4009, 4009),
            (.presenceFull(channel: "presence-x", limit: 100), "LimitReached", 4009, 4009),
        ]
        for (refusal, type, status, code) in table {
            #expect(refusal.type == type, "\(refusal)")
            #expect(refusal.status == status, "\(refusal)")
            #expect(refusal.error.code == code, "\(refusal)")
        }
        #expect(SubscribeRefusal.badSignature(expected: "1.2:private-a", given: "key:abc").message
            == "Invalid signature: Expected HMAC SHA256 hex digest of 1.2:private-a, but got abc")
    }

    @Test func presenceMemberKeepsTheSignedInfoBytesAndNormalisesNumericIDs() throws {
        let member = try SubscribeAuthorization.presenceMember(#"{"user_id":10,"user_info":{"name": "Mr. Channels"}}"#, maxInfoBytes: 1024).get()
        #expect(member == PresenceIdentity(userID: "10", info: #"{"name": "Mr. Channels"}"#))
        let bare = try SubscribeAuthorization.presenceMember(#"{"user_id":"u"}"#, maxInfoBytes: 1024).get()
        #expect(bare.info == "null")
    }

    @Test func presenceMemberRefusals() {
        func refusal(_ data: String, max: Int = 1024) -> SubscribeRefusal? {
            if case .failure(let refusal) = SubscribeAuthorization.presenceMember(data, maxInfoBytes: max) { return refusal }
            return nil
        }
        #expect(refusal("not json") == .channelDataNotAnObject)
        #expect(refusal("[1]") == .channelDataNotAnObject)
        #expect(refusal(#"{"user_info":{}}"#) == .missingUserID)
        #expect(refusal(#"{"user_id":""}"#) == .missingUserID)
        #expect(refusal(#"{"user_id":true}"#) == .missingUserID)
        #expect(refusal(#"{"user_id":"1","user_info":"0123456789"}"#, max: 8) == .userInfoTooLarge(limit: 8))
        #expect(refusal(#"{"user_id":"\#(String(repeating: "x", count: 129))"}"#) == .userIDTooLong(limit: 128))
        #expect(refusal(#"{"user_id":"\#(String(repeating: "x", count: 128))"}"#) == nil)
    }
}
