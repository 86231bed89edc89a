import Testing
import Bridge

struct OpcodeTests {
    @Test func namedOpcodesHaveTheirWireValues() {
        #expect([Opcode.continuation, .text, .binary, .close, .ping, .pong].map(\.rawValue) == [0x0, 0x1, 0x2, 0x8, 0x9, 0xA])
    }

    @Test func classifiesEveryNibble() {
        for value in UInt8(0)...0xF {
            let opcode = Opcode(rawValue: value)
            #expect(opcode.isControl == (value >= 0x8))
            #expect(opcode.isReserved == ((0x3...0x7).contains(value) || (0xB...0xF).contains(value)))
        }
        #expect(Opcode(rawValue: 0x10).isReserved)
    }
}
