import Testing
@testable import Bridge

/// Feeds header bytes one at a time; returns the error and the index of the byte that raised it.
private func firstRejection(_ bytes: [UInt8], maxFrameBytes: Int = 1 << 20) -> (error: WebSocketError, index: Int)? {
    var parser = FrameParser(maxFrameBytes: maxFrameBytes)
    for index in bytes.indices {
        do {
            let (consumed, header) = try withFrameBytes([bytes[index]]) { bytes throws(WebSocketError) in try parser.readHeader(bytes) }
            #expect(consumed == 1)
            if header != nil { return nil }
        } catch {
            return (error, index)
        }
    }
    return nil
}

private func readHeader(_ bytes: [UInt8], maxFrameBytes: Int = 1 << 20) throws(WebSocketError) -> (consumed: Int, header: FrameParser.Header?) {
    var parser = FrameParser(maxFrameBytes: maxFrameBytes)
    return try withFrameBytes(bytes) { bytes throws(WebSocketError) in try parser.readHeader(bytes) }
}

struct FrameParserTests {
    @Test func readsTheMaskedHelloHeaderOfRFC6455Section5_7() throws {
        let frame: [UInt8] = [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]
        var parser = FrameParser(maxFrameBytes: 1 << 20)
        let (consumed, header) = try withFrameBytes(frame) { bytes throws(WebSocketError) in try parser.readHeader(bytes) }
        #expect(consumed == 6)
        #expect(header == FrameParser.Header(fin: true, opcode: .text, payloadLength: 5))
        #expect(parser.isReadingPayload)
        var payload = [UInt8](repeating: 0, count: 5)
        let copied = frame[6...].withUnsafeBytes { source in
            payload.withUnsafeMutableBytes { parser.readPayload(source, into: $0.baseAddress!) }
        }
        #expect(copied == 5)
        #expect(payload == Array("Hello".utf8))
        #expect(parser.isBetweenFrames)
    }

    @Test(arguments: [
        (0, 6), (1, 6), (125, 6), (126, 8), (65535, 8), (65536, 14), (1 << 20, 14),
    ])
    func readsEachLengthEncoding(length: Int, headerBytes: Int) throws {
        let frame = ClientFrame.make(.binary, [UInt8](repeating: 7, count: length))
        let (consumed, header) = try readHeader(frame)
        #expect(consumed == headerBytes)
        #expect(header?.payloadLength == length)
    }

    @Test(arguments: [ClientFrame.Length.sixteenBit, .sixtyFourBit])
    func acceptsNonMinimalLengthEncodings(encoding: ClientFrame.Length) throws {
        let frame = ClientFrame.make(.text, Array("Hello".utf8), length: encoding)
        let (_, header) = try readHeader(frame)
        #expect(header == FrameParser.Header(fin: true, opcode: .text, payloadLength: 5))
    }

    @Test func stopsRightAfterTheHeader() throws {
        let frame = ClientFrame.make(.ping, []) + ClientFrame.text("x")
        let (consumed, header) = try readHeader(frame)
        #expect(consumed == 6)
        #expect(header == FrameParser.Header(fin: true, opcode: .ping, payloadLength: 0))
    }

    @Test func aHeaderSplitAnywhereGivesTheSameResult() throws {
        let frame = Array(ClientFrame.make(.binary, [UInt8](repeating: 1, count: 70_000), fin: false)[..<14])
        for split in 0...frame.count {
            var parser = FrameParser(maxFrameBytes: 1 << 20)
            let first = try withFrameBytes(frame[..<split]) { bytes throws(WebSocketError) in try parser.readHeader(bytes) }
            #expect(first.consumed == split)
            #expect((first.header != nil) == (split == frame.count))
            guard split < frame.count else { continue }
            let second = try withFrameBytes(frame[split...]) { bytes throws(WebSocketError) in try parser.readHeader(bytes) }
            #expect(second.consumed == frame.count - split)
            #expect(second.header == FrameParser.Header(fin: false, opcode: .binary, payloadLength: 70_000))
        }
    }

    /// Each rule rejects on the byte that decides it, before more is read.
    @Test(arguments: [
        ([0xC1], 0, WebSocketError.reservedBitsSet),
        ([0xA1], 0, .reservedBitsSet),
        ([0x91], 0, .reservedBitsSet),
        ([0x83], 0, .reservedOpcode(Opcode(rawValue: 3))),
        ([0x87], 0, .reservedOpcode(Opcode(rawValue: 7))),
        ([0x8B], 0, .reservedOpcode(Opcode(rawValue: 0xB))),
        ([0x8F], 0, .reservedOpcode(Opcode(rawValue: 0xF))),
        ([0x09], 0, .fragmentedControlFrame),
        ([0x08], 0, .fragmentedControlFrame),
        ([0x0A], 0, .fragmentedControlFrame),
        ([0x81, 0x05], 1, .unmaskedFrame),
        ([0x89, 0xFE], 1, .controlFrameTooLong),
        ([0x88, 0xFF], 1, .controlFrameTooLong),
        ([0x8A, 0xFE, 0x00, 0x7E], 1, .controlFrameTooLong),
        ([0x82, 0xFF, 0x80], 2, .invalidPayloadLength),
        ([0x82, 0xFF, 0xFF], 2, .invalidPayloadLength),
        ([0x82, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x01], 6, .frameTooBig(limit: 1 << 20)),
        ([0x82, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x01], 9, .frameTooBig(limit: 1 << 20)),
        ([0x82, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x00, 0x11], 7, .frameTooBig(limit: 1 << 20)),
    ] as [([UInt8], Int, WebSocketError)])
    func rejectsOnTheDecidingByte(bytes: [UInt8], index: Int, expected: WebSocketError) {
        let rejection = firstRejection(bytes + [0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00])
        #expect(rejection?.error == expected)
        #expect(rejection?.index == index)
    }

    @Test func rejectionsCarryTheirCloseCodes() {
        #expect(WebSocketError.reservedBitsSet.closeCode == .protocolError)
        #expect(WebSocketError.reservedOpcode(Opcode(rawValue: 3)).closeCode == .protocolError)
        #expect(WebSocketError.fragmentedControlFrame.closeCode == .protocolError)
        #expect(WebSocketError.unmaskedFrame.closeCode == .protocolError)
        #expect(WebSocketError.controlFrameTooLong.closeCode == .protocolError)
        #expect(WebSocketError.invalidPayloadLength.closeCode == .protocolError)
        #expect(WebSocketError.frameTooBig(limit: 1).closeCode == .messageTooBig)
    }

    @Test func theFrameLimitIsInclusive() throws {
        let atLimit = ClientFrame.make(.binary, [UInt8](repeating: 0, count: 300))
        #expect(try readHeader(atLimit, maxFrameBytes: 300).header?.payloadLength == 300)
        let over = ClientFrame.make(.binary, [UInt8](repeating: 0, count: 301))
        #expect(firstRejection(over, maxFrameBytes: 300)?.error == .frameTooBig(limit: 300))
        #expect(firstRejection(over, maxFrameBytes: 300)?.index == 3)
        let sevenBit = ClientFrame.make(.binary, [UInt8](repeating: 0, count: 11))
        #expect(firstRejection(sevenBit, maxFrameBytes: 10)?.error == .frameTooBig(limit: 10))
        #expect(firstRejection(sevenBit, maxFrameBytes: 10)?.index == 1)
    }

    @Test func rejectsAnUnmaskedFrameFromRFC6455Section5_7() {
        let unmasked: [UInt8] = [0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F]
        #expect(firstRejection(unmasked)?.error == .unmaskedFrame)
    }

    /// The word-at-a-time unmasking agrees with the byte-at-a-time definition of
    /// RFC 6455 §5.3 for every length, key phase and alignment, in place or not.
    @Test func unmaskingMatchesTheDefinition() {
        let key: [UInt8] = [0x01, 0x9C, 0x5A, 0xF0]
        let packedKey = UInt32(key[0]) | UInt32(key[1]) << 8 | UInt32(key[2]) << 16 | UInt32(key[3]) << 24
        var random = FrameTestRandom(state: 42)
        for count in 0...80 {
            let data = (0..<(count + 3)).map { _ in UInt8.random(in: 0...255, using: &random) }
            for phase in 0..<4 {
                for offset in 0..<3 {
                    let expected = (0..<count).map { data[offset + $0] ^ key[(phase + $0) % 4] }
                    var copied = [UInt8](repeating: 0, count: count + 1)
                    data.withUnsafeBytes { source in
                        copied.withUnsafeMutableBytes { destination in
                            FrameParser.unmask(from: source.baseAddress! + offset, to: destination.baseAddress! + 1,
                                               count: count, key: packedKey, phase: phase)
                        }
                    }
                    #expect(Array(copied[1...]) == expected)
                    var inPlace = data
                    inPlace.withUnsafeMutableBytes { bytes in
                        FrameParser.unmask(from: bytes.baseAddress! + offset, to: bytes.baseAddress! + offset,
                                           count: count, key: packedKey, phase: phase)
                    }
                    #expect(Array(inPlace[offset..<(offset + count)]) == expected)
                }
            }
        }
    }

    @Test func payloadReadInPiecesKeepsTheKeyPhase() throws {
        let payload = (0..<100).map { UInt8($0) }
        let frame = ClientFrame.make(.binary, payload, mask: [0xDE, 0xAD, 0xBE, 0xEF])
        var parser = FrameParser(maxFrameBytes: 1 << 20)
        let (consumed, _) = try withFrameBytes(frame) { bytes throws(WebSocketError) in try parser.readHeader(bytes) }
        var output = [UInt8](repeating: 0, count: payload.count)
        var position = 0
        for piece in [1, 2, 3, 5, 7, 11, 13, 17, 41] {
            let start = consumed + position
            let read = frame[start..<min(frame.count, start + piece)].withUnsafeBytes { source in
                output.withUnsafeMutableBytes { parser.readPayload(source, into: $0.baseAddress! + position) }
            }
            position += read
        }
        #expect(position == 100)
        #expect(output == payload)
        #expect(parser.isBetweenFrames)
    }
}
