import Testing
import Bridge

struct FrameEncoderTests {
    // RFC 6455 §5.7
    @Test func encodesTheUnmaskedHello() {
        #expect(FrameEncoder.encode(opcode: .text, payload: Array("Hello".utf8)) == [0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
    }

    @Test func encodesTheFragmentedHello() {
        #expect(FrameEncoder.encode(opcode: .text, fin: false, payload: Array("Hel".utf8)) == [0x01, 0x03, 0x48, 0x65, 0x6C])
        #expect(FrameEncoder.encode(opcode: .continuation, payload: Array("lo".utf8)) == [0x80, 0x02, 0x6C, 0x6F])
    }

    @Test func encodesTheUnmaskedPing() {
        #expect(FrameEncoder.encode(opcode: .ping, payload: Array("Hello".utf8)) == [0x89, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
    }

    @Test func encodesThe256ByteBinaryHeader() {
        let payload = [UInt8](repeating: 0x5A, count: 256)
        let frame = FrameEncoder.encode(opcode: .binary, payload: payload)
        #expect(Array(frame[..<4]) == [0x82, 0x7E, 0x01, 0x00])
        #expect(Array(frame[4...]) == payload)
    }

    @Test func encodesThe64KiBBinaryHeader() {
        let payload = [UInt8](repeating: 0xA5, count: 65536)
        let frame = FrameEncoder.encode(opcode: .binary, payload: payload)
        #expect(Array(frame[..<10]) == [0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00])
        #expect(frame.count == 65546)
        #expect(Array(frame[10...]) == payload)
    }

    @Test(arguments: [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10), (1 << 40, 10)])
    func headerLengthUsesTheMinimalEncoding(payloadLength: Int, headerLength: Int) {
        #expect(FrameEncoder.headerLength(payloadLength: payloadLength) == headerLength)
    }

    @Test func writesTheHeaderIntoHeadroom() {
        var buffer = [UInt8](repeating: 0xEE, count: 12)
        let written = buffer.withUnsafeMutableBytes {
            FrameEncoder.writeHeader(opcode: .text, payloadLength: 300, to: $0.baseAddress! + 1)
        }
        #expect(written == 4)
        #expect(buffer[..<6] == [0xEE, 0x81, 0x7E, 0x01, 0x2C, 0xEE])
        let large = buffer.withUnsafeMutableBytes {
            FrameEncoder.writeHeader(opcode: .binary, fin: false, payloadLength: 0x0102_0304_0506, to: $0.baseAddress!)
        }
        #expect(large == 10)
        #expect(buffer[..<10] == [0x02, 0x7F, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06])
    }

    @Test func closePayloadIsTheCodeThenTheReason() {
        #expect(FrameEncoder.closePayload(code: .normalClosure, reason: "") == [0x03, 0xE8])
        #expect(FrameEncoder.closePayload(code: CloseCode(rawValue: 4200), reason: "bye") == [0x10, 0x68, 0x62, 0x79, 0x65])
    }

    @Test func closePayloadTruncatesTheReasonToFitAControlFrame() {
        let ascii = FrameEncoder.closePayload(code: .goingAway, reason: String(repeating: "a", count: 200))
        #expect(ascii.count == 125)
        // 2-byte characters: cutting at 123 would split one, so 122 bytes of reason remain.
        let accented = FrameEncoder.closePayload(code: .goingAway, reason: String(repeating: "é", count: 100))
        #expect(accented.count == 124)
        #expect(String(validating: accented[2...], as: UTF8.self) == String(repeating: "é", count: 61))
        for prefix in 0..<4 {
            let mixed = String(repeating: "x", count: prefix) + String(repeating: "𝄞", count: 40)
            let payload = FrameEncoder.closePayload(code: .goingAway, reason: mixed)
            #expect(payload.count <= 125)
            #expect(payload.count >= 122)
            #expect(String(validating: payload[2...], as: UTF8.self) != nil)
        }
    }
}
