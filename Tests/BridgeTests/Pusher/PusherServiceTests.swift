@testable import Bridge
import Testing

@Suite struct PusherHandshakeRulesTests {
    @Test func protocolVersionChecks() {
        #expect(PusherService.checkProtocol("7") == nil)
        #expect(PusherService.checkProtocol("4") == nil)
        #expect(PusherService.checkProtocol(nil)?.code == 4008)
        #expect(PusherService.checkProtocol("seven")?.code == 4006)
        #expect(PusherService.checkProtocol("3")?.code == 4007)
        #expect(PusherService.checkProtocol("8")?.code == 4007)
    }

    @Test func presenceMemberKeepsTheSignedInfoBytesAndNormalisesNumericIDs() throws {
        let member = try PusherSession.presenceMember(#"{"user_id":10,"user_info":{"name": "Mr. Channels"}}"#, maxInfoBytes: 1024).get()
        #expect(member.id == "10")
        #expect(member.info == #"{"name": "Mr. Channels"}"#)
        let bare = try PusherSession.presenceMember(#"{"user_id":"u"}"#, maxInfoBytes: 1024).get()
        #expect(bare.info == "null")
    }

    @Test func presenceMemberRefusals() {
        func type(_ data: String, max: Int = 1024) -> String? {
            if case .failure(let refusal) = PusherSession.presenceMember(data, maxInfoBytes: max) { return refusal.type }
            return nil
        }
        #expect(type("not json") == "InvalidChannelData")
        #expect(type(#"{"user_info":{}}"#) == "InvalidChannelData")
        #expect(type(#"{"user_id":""}"#) == "InvalidChannelData")
        #expect(type(#"{"user_id":"1","user_info":"0123456789"}"#, max: 8) == "LimitReached")
        #expect(type(#"{"user_id":"\#(String(repeating: "x", count: 129))"}"#) == "LimitReached")
    }
}
