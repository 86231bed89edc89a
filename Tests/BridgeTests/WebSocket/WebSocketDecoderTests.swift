import Testing
@testable import Bridge

private let hello = Array("Hello".utf8)

struct WebSocketDecoderTests {
    // MARK: RFC 6455 §5.7 examples

    @Test func decodesTheMaskedHelloOfRFC6455Section5_7() throws {
        let frame: [UInt8] = [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]
        var decoder = WebSocketDecoder()
        let (consumed, message) = try withFrameBytes(frame) { bytes throws(WebSocketError) in try decoder.parse(bytes) }
        #expect(consumed == 11)
        #expect(message == .text(hello))
        #expect(decoder.isIdle)
    }

    @Test func decodesTheMaskedPongOfRFC6455Section5_7() {
        let frame: [UInt8] = [0x8A, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]
        #expect(decodeFrames(frame) == FrameStreamOutcome(messages: [.pong(hello)]))
    }

    @Test func decodesAMaskedPing() {
        let frame: [UInt8] = [0x89, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]
        #expect(decodeFrames(frame) == FrameStreamOutcome(messages: [.ping(hello)]))
    }

    /// The fragmented "Hel" + "lo" of §5.7, masked as a client must send it.
    @Test func reassemblesTheFragmentedHello() throws {
        let first = ClientFrame.text("Hel", fin: false)
        let second = ClientFrame.continuation("lo")
        #expect(Array(first[..<2]) == [0x01, 0x83])
        #expect(Array(second[..<2]) == [0x80, 0x82])
        var decoder = WebSocketDecoder()
        let step1 = try withFrameBytes(first) { bytes throws(WebSocketError) in try decoder.parse(bytes) }
        #expect(step1.consumed == first.count && step1.message == nil)
        #expect(!decoder.isIdle)
        let step2 = try withFrameBytes(second) { bytes throws(WebSocketError) in try decoder.parse(bytes) }
        #expect(step2.consumed == second.count && step2.message == .text(hello))
        #expect(decoder.isIdle)
        #expect(decodeFrames(first + second) == FrameStreamOutcome(messages: [.text(hello)]))
    }

    @Test(arguments: [256, 65536])
    func decodesTheLongBinaryExamples(length: Int) {
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let frame = ClientFrame.make(.binary, payload)
        #expect(Array(frame[..<2]) == (length == 256 ? [0x82, 0xFE] : [0x82, 0xFF]))
        #expect(decodeFrames(frame) == FrameStreamOutcome(messages: [.binary(payload)]))
        #expect(decodeFrames(frame, chunks: [1000]) == FrameStreamOutcome(messages: [.binary(payload)]))
    }

    @Test(arguments: [
        [0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F],   // single-frame unmasked text
        [0x01, 0x03, 0x48, 0x65, 0x6C],               // unmasked "Hel" fragment
        [0x89, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F],   // unmasked ping
    ] as [[UInt8]])
    func rejectsTheUnmaskedExamples(frame: [UInt8]) {
        #expect(decodeFrames(frame).error == .unmaskedFrame)
        #expect(decodeFrames(frame).error?.closeCode == .protocolError)
    }

    // MARK: delivery

    @Test func returnsOneMessageAndStopsRightAfterIt() throws {
        let first = ClientFrame.text("one")
        let stream = first + ClientFrame.text("two")
        var decoder = WebSocketDecoder()
        let (consumed, message) = try withFrameBytes(stream) { bytes throws(WebSocketError) in try decoder.parse(bytes) }
        #expect(consumed == first.count)
        #expect(message == .text(Array("one".utf8)))
        #expect(decodeFrames(stream).messages == [.text(Array("one".utf8)), .text(Array("two".utf8))])
    }

    @Test func consumesEverythingWhenNoMessageCompletes() throws {
        let frame = ClientFrame.make(.binary, [UInt8](repeating: 9, count: 1000))
        var decoder = WebSocketDecoder()
        for cut in [1, 3, 7, 500] {
            let (consumed, message) = try withFrameBytes(frame[..<cut]) { bytes throws(WebSocketError) in try decoder.parse(bytes) }
            #expect(consumed == cut && message == nil)
            decoder = WebSocketDecoder()
        }
        let empty = try withFrameBytes([]) { bytes throws(WebSocketError) in try decoder.parse(bytes) }
        #expect(empty.consumed == 0 && empty.message == nil)
    }

    @Test func deliversEmptyMessagesAndFrames() {
        let stream = ClientFrame.make(.text, []) + ClientFrame.make(.binary, [])
            + ClientFrame.make(.ping, []) + ClientFrame.make(.pong, [])
            + ClientFrame.make(.text, [], fin: false) + ClientFrame.make(.continuation, [], fin: false)
            + ClientFrame.make(.continuation, [])
            + ClientFrame.make(.close, [])
        let expected: [WebSocketMessage] = [.text([]), .binary([]), .ping([]), .pong([]), .text([]), .close(code: nil, reason: [])]
        #expect(decodeFrames(stream) == FrameStreamOutcome(messages: expected))
        #expect(decodeFrames(stream, chunks: [1]) == FrameStreamOutcome(messages: expected))
    }

    @Test func controlFramesInsideAFragmentedMessageAreDeliveredAtOnce() {
        let stream = ClientFrame.text("Hel", fin: false)
            + ClientFrame.make(.ping, Array("p1".utf8))
            + ClientFrame.continuation("l", fin: false)
            + ClientFrame.make(.pong, Array("p2".utf8))
            + ClientFrame.make(.ping, [])
            + ClientFrame.continuation("o")
        let expected: [WebSocketMessage] = [.ping(Array("p1".utf8)), .pong(Array("p2".utf8)), .ping([]), .text(Array("Hello".utf8))]
        #expect(decodeFrames(stream).messages == expected)
        for size in 1...9 {
            #expect(decodeFrames(stream, chunks: [size]) == FrameStreamOutcome(messages: expected))
        }
    }

    @Test func aCloseInsideAFragmentedMessageIsDeliveredAtOnce() {
        let stream = ClientFrame.make(.binary, [1, 2], fin: false) + ClientFrame.make(.close, [0x03, 0xE8])
        #expect(decodeFrames(stream) == FrameStreamOutcome(messages: [.close(code: .normalClosure, reason: [])]))
    }

    @Test func reassemblesManySmallFragments() {
        var stream = ClientFrame.make(.binary, [0], fin: false)
        for index in 1..<5000 { stream += ClientFrame.make(.continuation, [UInt8(truncatingIfNeeded: index)], fin: index == 4999) }
        let expected = (0..<5000).map { UInt8(truncatingIfNeeded: $0) }
        #expect(decodeFrames(stream) == FrameStreamOutcome(messages: [.binary(expected)]))
    }

    @Test func aPayloadSplitAcrossReadsIsReassembled() {
        let payload = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 / 7) }
        let frame = ClientFrame.make(.binary, payload, mask: [0x12, 0x34, 0x56, 0x78])
        for chunks in [[65_536], [4096, 3, 1000], [99_999]] {
            #expect(decodeFrames(frame, chunks: chunks) == FrameStreamOutcome(messages: [.binary(payload)]))
        }
    }

    // MARK: fragmentation errors (RFC 6455 §5.4)

    @Test func rejectsAContinuationWithoutAMessage() {
        #expect(decodeFrames(ClientFrame.continuation("lo")).error == .unexpectedContinuation)
        let afterFinished = ClientFrame.text("done") + ClientFrame.continuation("more")
        #expect(decodeFrames(afterFinished) == FrameStreamOutcome(messages: [.text(Array("done".utf8))], error: .unexpectedContinuation))
        #expect(WebSocketError.unexpectedContinuation.closeCode == .protocolError)
    }

    @Test(arguments: [Opcode.text, .binary])
    func rejectsANewMessageInsideAFragmentedOne(opcode: Opcode) {
        let stream = ClientFrame.make(.binary, [1], fin: false) + ClientFrame.make(opcode, [2])
        #expect(decodeFrames(stream).error == .unfinishedMessage)
        #expect(WebSocketError.unfinishedMessage.closeCode == .protocolError)
    }

    @Test func headerRejectionsReachTheCaller() {
        #expect(decodeFrames(ClientFrame.make(.text, hello, rsv: 4)).error == .reservedBitsSet)
        #expect(decodeFrames(ClientFrame.make(Opcode(rawValue: 0xB), [])).error == .reservedOpcode(Opcode(rawValue: 0xB)))
        #expect(decodeFrames(ClientFrame.make(.ping, [], fin: false)).error == .fragmentedControlFrame)
        #expect(decodeFrames(ClientFrame.make(.ping, [UInt8](repeating: 0, count: 126))).error == .controlFrameTooLong)
        #expect(decodeFrames(ClientFrame.make(.text, hello, mask: nil)).error == .unmaskedFrame)
    }

    @Test func aControlFrameOf125BytesIsAccepted() {
        let payload = [UInt8](repeating: 0x61, count: 125)
        #expect(decodeFrames(ClientFrame.make(.ping, payload)) == FrameStreamOutcome(messages: [.ping(payload)]))
    }

    // MARK: limits

    @Test func rejectsAFrameOverTheFrameLimitBeforeItsPayload() {
        let limits = WebSocketLimits(maxFrameBytes: 100, maxMessageBytes: 1000)
        let frame = ClientFrame.make(.binary, [UInt8](repeating: 0, count: 101))
        #expect(decodeFrames(Array(frame[..<4]), limits: limits).error == .frameTooBig(limit: 100))
        #expect(WebSocketError.frameTooBig(limit: 100).closeCode == .messageTooBig)
        let atLimit = ClientFrame.make(.binary, [UInt8](repeating: 0, count: 100))
        #expect(decodeFrames(atLimit, limits: limits).error == nil)
    }

    @Test func rejectsASingleFrameOverTheMessageLimit() {
        let limits = WebSocketLimits(maxFrameBytes: 1000, maxMessageBytes: 100)
        let frame = ClientFrame.make(.text, [UInt8](repeating: 0x61, count: 101))
        #expect(decodeFrames(Array(frame[..<8]), limits: limits).error == .messageTooBig(limit: 100))
        #expect(WebSocketError.messageTooBig(limit: 100).closeCode == .messageTooBig)
    }

    /// The running total is checked against the limit at each fragment's header.
    @Test func rejectsFragmentsAddingUpOverTheMessageLimitAtTheHeader() {
        let limits = WebSocketLimits(maxFrameBytes: 100, maxMessageBytes: 10)
        let first = ClientFrame.make(.binary, [UInt8](repeating: 1, count: 6), fin: false)
        let second = ClientFrame.make(.continuation, [UInt8](repeating: 2, count: 4), fin: false)
        let third = ClientFrame.make(.continuation, [UInt8](repeating: 3, count: 1))
        #expect(decodeFrames(first + second + Array(third[..<6]), limits: limits).error == .messageTooBig(limit: 10))
        let exactly = first + ClientFrame.make(.continuation, [UInt8](repeating: 2, count: 4))
        #expect(decodeFrames(exactly, limits: limits) == FrameStreamOutcome(messages: [.binary([1, 1, 1, 1, 1, 1, 2, 2, 2, 2])]))
    }

    @Test func controlFramesDoNotCountTowardsTheMessage() {
        let limits = WebSocketLimits(maxFrameBytes: 100, maxMessageBytes: 4)
        let stream = ClientFrame.make(.binary, [1, 2], fin: false) + ClientFrame.make(.ping, [UInt8](repeating: 0, count: 50))
            + ClientFrame.make(.continuation, [3, 4])
        #expect(decodeFrames(stream, limits: limits).messages == [.ping([UInt8](repeating: 0, count: 50)), .binary([1, 2, 3, 4])])
    }

    // MARK: UTF-8 (RFC 6455 §8.1)

    @Test func rejectsInvalidUTF8InASingleFrame() {
        let result = decodeFrames(ClientFrame.make(.text, [0x48, 0xC0, 0x80]))
        #expect(result.error == .invalidUTF8)
        #expect(result.error?.closeCode == .invalidPayload)
        #expect(decodeFrames(ClientFrame.make(.text, [0x48, 0xED, 0xA0, 0x80])).error == .invalidUTF8)
        #expect(decodeFrames(ClientFrame.make(.binary, [0xC0, 0x80])).error == nil)
    }

    @Test func acceptsACharacterSplitAcrossFragments() {
        let euro: [UInt8] = [0xE2, 0x82, 0xAC]
        for split in 0...3 {
            let stream = ClientFrame.make(.text, Array(euro[..<split]), fin: false) + ClientFrame.make(.continuation, Array(euro[split...]))
            #expect(decodeFrames(stream) == FrameStreamOutcome(messages: [.text(euro)]))
        }
    }

    @Test func rejectsATextMessageEndingInsideACharacter() {
        #expect(decodeFrames(ClientFrame.make(.text, [0x41, 0xE2, 0x82])).error == .invalidUTF8)
        let fragmented = ClientFrame.make(.text, [0x41, 0xE2], fin: false) + ClientFrame.make(.continuation, [0x82])
        #expect(decodeFrames(fragmented).error == .invalidUTF8)
        #expect(decodeFrames(fragmented, chunks: [1]).error == .invalidUTF8)
    }

    /// Autobahn 6.4.1/6.4.2: the fragment holding the invalid byte fails the
    /// message before the following fragment is sent.
    @Test func failsAtTheFragmentThatBreaksUTF8() {
        let first = ClientFrame.make(.text, Array("κόσμε".utf8), fin: false)
        let second = ClientFrame.make(.continuation, [0xF4, 0x90, 0x80, 0x80], fin: false)
        #expect(decodeFrames(first + second).error == .invalidUTF8)
        #expect(decodeFrames(first + second, chunks: [3]).error == .invalidUTF8)
    }

    /// Autobahn 6.4.3/6.4.4: a single frame arriving in pieces fails at the piece
    /// holding the invalid byte, before the rest of the frame arrives.
    @Test func failsMidFrameAtTheInvalidByte() throws {
        let payload = Array("κόσμε".utf8) + [0xF4, 0x90, 0x80, 0x80] + Array("edited".utf8)
        let frame = ClientFrame.make(.text, payload)
        // The header, the valid prefix, then F4, whose following 90 is the first invalid byte.
        let invalidAt = 6 + Array("κόσμε".utf8).count + 1
        var decoder = WebSocketDecoder()
        let beforeIt = try withFrameBytes(frame[..<invalidAt]) { bytes throws(WebSocketError) in try decoder.parse(bytes) }
        #expect(beforeIt.consumed == invalidAt && beforeIt.message == nil)
        #expect(throws: WebSocketError.invalidUTF8) {
            _ = try withFrameBytes(frame[invalidAt..<(invalidAt + 1)]) { bytes throws(WebSocketError) in try decoder.parse(bytes) }
        }
    }

    // MARK: close frames (RFC 6455 §5.5.1, §7.4)

    @Test func decodesCloseFramePayloads() {
        #expect(decodeFrames(ClientFrame.make(.close, [])).messages == [.close(code: nil, reason: [])])
        #expect(decodeFrames(ClientFrame.make(.close, [0x03, 0xE8])).messages == [.close(code: .normalClosure, reason: [])])
        #expect(decodeFrames(ClientFrame.make(.close, [0x03, 0xE9] + Array("bye ✓".utf8))).messages
            == [.close(code: .goingAway, reason: Array("bye ✓".utf8))])
        #expect(decodeFrames(ClientFrame.make(.close, [0x0F, 0xA0])).messages == [.close(code: CloseCode(rawValue: 4000), reason: [])])
    }

    @Test func rejectsAOneByteClosePayload() {
        #expect(decodeFrames(ClientFrame.make(.close, [0x03])).error == .truncatedCloseCode)
        #expect(WebSocketError.truncatedCloseCode.closeCode == .protocolError)
    }

    @Test(arguments: [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] as [UInt16])
    func rejectsCloseCodesNotAllowedOnTheWire(code: UInt16) {
        let result = decodeFrames(ClientFrame.make(.close, [UInt8(code >> 8), UInt8(code & 0xFF)]))
        #expect(result.error == .invalidCloseCode(CloseCode(rawValue: code)))
        #expect(result.error?.closeCode == .protocolError)
    }

    @Test(arguments: [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999] as [UInt16])
    func acceptsCloseCodesAllowedOnTheWire(code: UInt16) {
        let result = decodeFrames(ClientFrame.make(.close, [UInt8(code >> 8), UInt8(code & 0xFF)]))
        #expect(result == FrameStreamOutcome(messages: [.close(code: CloseCode(rawValue: code), reason: [])]))
    }

    @Test func rejectsACloseReasonThatIsNotUTF8() {
        #expect(decodeFrames(ClientFrame.make(.close, [0x03, 0xE8, 0xFF])).error == .invalidCloseReason)
        #expect(decodeFrames(ClientFrame.make(.close, [0x03, 0xE8, 0x41, 0xE2, 0x82])).error == .invalidCloseReason)
        #expect(WebSocketError.invalidCloseReason.closeCode == .invalidPayload)
    }

    // MARK: any split of the stream gives the same result

    static let mixedStream: [UInt8] = ClientFrame.text("Hello")
        + ClientFrame.make(.binary, (0..<200).map { UInt8($0) }, fin: false)
        + ClientFrame.make(.ping, Array("are you there".utf8))
        + ClientFrame.make(.continuation, [UInt8](repeating: 0xAB, count: 300), fin: false, mask: [1, 2, 3, 4])
        + ClientFrame.make(.continuation, [], fin: true)
        + ClientFrame.make(.text, Array("fragmented κόσμε ".utf8), fin: false, mask: [0, 0, 0, 0])
        + ClientFrame.make(.continuation, [UInt8](repeating: 0x7A, count: 70_000), mask: [0xFF, 0xFE, 0xFD, 0xFC])
        + ClientFrame.make(.pong, [])
        + ClientFrame.make(.text, Array("non-minimal length".utf8), length: .sixtyFourBit)
        + ClientFrame.make(.close, [0x03, 0xE8] + Array("done".utf8))

    @Test func byteAtATimeEqualsWholeBuffer() {
        let whole = decodeFrames(Self.mixedStream)
        #expect(whole.error == nil)
        #expect(whole.messages.count == 7)
        #expect(whole.messages.last == .close(code: .normalClosure, reason: Array("done".utf8)))
        #expect(decodeFrames(Self.mixedStream, chunks: [1]) == whole)
    }

    @Test func seededRandomChunkingEqualsWholeBuffer() {
        var random = FrameTestRandom(state: 0x5EED)
        let whole = decodeFrames(Self.mixedStream)
        for _ in 0..<200 {
            let chunks = (0..<16).map { _ in Int.random(in: 1...(Bool.random(using: &random) ? 16 : 9000), using: &random) }
            #expect(decodeFrames(Self.mixedStream, chunks: chunks) == whole, "chunks \(chunks)")
        }
    }

    /// Random valid streams, and the same streams with one byte corrupted: every
    /// chunking yields the same messages and the same error as the whole buffer.
    @Test func seededRandomStreamsDecodeTheSameInAnyChunking() {
        var random = FrameTestRandom(state: 2024)
        let limits = WebSocketLimits(maxFrameBytes: 3000, maxMessageBytes: 5000)
        for round in 0..<300 {
            var stream: [UInt8] = []
            var expected: [WebSocketMessage] = []
            for _ in 0..<Int.random(in: 1...8, using: &random) {
                let (frames, messages) = randomMessages(using: &random)
                stream += frames
                expected += messages
            }
            let chunks = (0..<8).map { _ in Int.random(in: 1...700, using: &random) }
            let whole = decodeFrames(stream, limits: limits)
            #expect(whole == FrameStreamOutcome(messages: expected), "round \(round)")
            #expect(decodeFrames(stream, chunks: chunks, limits: limits) == whole, "round \(round)")

            var corrupted = stream
            corrupted[Int.random(in: 0..<corrupted.count, using: &random)] ^= UInt8.random(in: 1...255, using: &random)
            let corruptedWhole = decodeFrames(corrupted, limits: limits)
            #expect(decodeFrames(corrupted, chunks: chunks, limits: limits) == corruptedWhole, "round \(round) corrupted")
            #expect(decodeFrames(corrupted, chunks: [1], limits: limits) == corruptedWhole, "round \(round) corrupted, byte at a time")
        }
    }

    /// One data message (maybe fragmented, maybe with pongs between its fragments) or one control frame.
    private func randomMessages(using random: inout FrameTestRandom) -> (frames: [UInt8], messages: [WebSocketMessage]) {
        let mask = (0..<4).map { _ in UInt8.random(in: 0...255, using: &random) }
        switch Int.random(in: 0..<5, using: &random) {
        case 0:
            let payload = (0..<Int.random(in: 0...125, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            return (ClientFrame.make(.ping, payload, mask: mask), [.ping(payload)])
        case 1:
            let code = [UInt16(1000), 1001, 1011, 4001].randomElement(using: &random)!
            let reason = Array("closing ✓".utf8)
            return (ClientFrame.make(.close, [UInt8(code >> 8), UInt8(code & 0xFF)] + reason, mask: mask),
                    [.close(code: CloseCode(rawValue: code), reason: reason)])
        default:
            let isText = Bool.random(using: &random)
            let alphabet = ["a", "é", "€", "𝄞", " ", "κ"]
            let payload: [UInt8] = isText
                ? Array((0..<Int.random(in: 0...900, using: &random)).map { _ in alphabet.randomElement(using: &random)! }.joined().utf8)
                : (0..<Int.random(in: 0...2500, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            var frames: [UInt8] = []
            var messages: [WebSocketMessage] = []
            var start = 0
            var opcode: Opcode = isText ? .text : .binary
            for part in 0..<10 {
                let end = part == 9 ? payload.count : min(payload.count, start + Int.random(in: 0...1200, using: &random))
                let fin = end == payload.count && (part == 9 || Bool.random(using: &random))
                frames += ClientFrame.make(opcode, Array(payload[start..<end]), fin: fin, mask: mask)
                if fin { break }
                if Int.random(in: 0..<4, using: &random) == 0 {
                    frames += ClientFrame.make(.pong, [7], mask: mask)
                    messages.append(.pong([7]))
                }
                opcode = .continuation
                start = end
            }
            return (frames, messages + [isText ? .text(payload) : .binary(payload)])
        }
    }

    // MARK: memory

    @Test func anIdleDecoderIsSmallAndHoldsNoBuffer() {
        #expect(MemoryLayout<WebSocketDecoder>.size <= 64)
        var decoder = WebSocketDecoder()
        #expect(decoder.isIdle)
        let partial = ClientFrame.make(.binary, [UInt8](repeating: 1, count: 1000), fin: false)
        _ = decodeFrames(Array(partial[..<500]), with: &decoder)
        #expect(!decoder.isIdle)
        _ = decodeFrames(Array(partial[500...]) + ClientFrame.make(.ping, [1, 2, 3])[..<7] , with: &decoder)
        #expect(!decoder.isIdle)
        let rest = Array(ClientFrame.make(.ping, [1, 2, 3])[7...]) + ClientFrame.make(.continuation, [2])
        let result = decodeFrames(rest, with: &decoder)
        #expect(result.messages == [.ping([1, 2, 3]), .binary([UInt8](repeating: 1, count: 1000) + [2])])
        #expect(decoder.isIdle)
    }

    /// A header alone reserves at most `reserveAhead` bytes, however long the frame says it is.
    @Test func aHeaderAloneDoesNotReserveTheWholeFrame() {
        let frame = ClientFrame.make(.binary, [UInt8](repeating: 0, count: 1 << 20))
        var decoder = WebSocketDecoder()
        _ = decodeFrames(Array(frame[..<20]), with: &decoder)
        #expect(!decoder.isIdle)
        #expect(decoder.bufferedCapacity <= WebSocketDecoder.reserveAhead + 64)
    }
}
