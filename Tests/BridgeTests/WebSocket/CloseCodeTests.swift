import Testing
import Bridge

struct CloseCodeTests {
    @Test func namedCodesHaveTheirValues() {
        let named: [CloseCode] = [.normalClosure, .goingAway, .protocolError, .unsupportedData, .invalidPayload,
                                  .policyViolation, .messageTooBig, .mandatoryExtension, .internalError]
        #expect(named.map(\.rawValue) == [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011])
    }

    @Test func validOnTheWireFollowsRFC6455Section7_4() {
        let valid = Set<UInt16>(Array(1000...1003) + Array(1007...1014) + Array(3000...4999))
        for value in UInt16(0)...UInt16.max {
            #expect(CloseCode(rawValue: value).isValidOnWire == valid.contains(value), "\(value)")
        }
    }
}
