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
}
