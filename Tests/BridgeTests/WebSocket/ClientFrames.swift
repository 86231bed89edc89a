@testable import Bridge

/// Builds client frames byte by byte, independently of the code under test.
enum ClientFrame {
    enum Length {
        /// The minimal encoding, as a conforming client sends.
        case minimal
        case sixteenBit
        case sixtyFourBit
    }

    static func make(_ opcode: Opcode, _ payload: [UInt8], fin: Bool = true, rsv: UInt8 = 0,
                     mask: [UInt8]? = [0x37, 0xFA, 0x21, 0x3D], length: Length = .minimal) -> [UInt8] {
        var frame: [UInt8] = [(fin ? 0x80 : 0) | rsv << 4 | opcode.rawValue]
        let maskBit: UInt8 = mask == nil ? 0 : 0x80
        let count = payload.count
        switch length {
        case .minimal where count <= 125:
            frame.append(maskBit | UInt8(count))
        case .minimal where count <= 0xFFFF, .sixteenBit:
            frame.append(maskBit | 126)
            frame += [UInt8(count >> 8 & 0xFF), UInt8(count & 0xFF)]
        default:
            frame.append(maskBit | 127)
            for shift in stride(from: 56, through: 0, by: -8) { frame.append(UInt8(count >> shift & 0xFF)) }
        }
        guard let mask else { return frame + payload }
        frame += mask
        for (index, byte) in payload.enumerated() { frame.append(byte ^ mask[index % 4]) }
        return frame
    }

    static func text(_ string: String, fin: Bool = true) -> [UInt8] { make(.text, Array(string.utf8), fin: fin) }
    static func continuation(_ string: String, fin: Bool = true) -> [UInt8] { make(.continuation, Array(string.utf8), fin: fin) }
}

/// Everything a decoder produced from a stream, fed in the given chunk sizes.
struct FrameStreamOutcome: Equatable {
    var messages: [WebSocketMessage] = []
    var error: WebSocketError?
}

func decodeFrames(_ stream: [UInt8], chunks: [Int]? = nil, limits: WebSocketLimits = WebSocketLimits()) -> FrameStreamOutcome {
    var decoder = WebSocketDecoder(limits: limits)
    return decodeFrames(stream, chunks: chunks, with: &decoder)
}

func decodeFrames(_ stream: [UInt8], chunks: [Int]? = nil, with decoder: inout WebSocketDecoder) -> FrameStreamOutcome {
    var result = FrameStreamOutcome()
    var start = 0
    var chunkIndex = 0
    while start < stream.count {
        let size = chunks.map { $0[chunkIndex % $0.count] } ?? stream.count
        chunkIndex += 1
        let end = min(stream.count, start + max(size, 1))
        var offset = start
        // A decoder returns at most one message per call, so at most one call per byte plus one.
        for _ in 0...(end - start) where offset < end {
            do {
                let (consumed, message) = try withFrameBytes(stream[offset..<end]) { bytes throws(WebSocketError) in try decoder.parse(bytes) }
                precondition(consumed > 0 || message != nil, "no progress")
                offset += consumed
                if let message { result.messages.append(message) }
            } catch {
                result.error = error
                return result
            }
        }
        precondition(offset == end, "chunk not consumed")
        start = end
    }
    return result
}

/// A deterministic generator (SplitMix64), so random tests are reproducible from their seed.
struct FrameTestRandom: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// `withUnsafeBytes` that keeps the decoder's typed error.
func withFrameBytes<R>(_ bytes: ArraySlice<UInt8>, _ body: (UnsafeRawBufferPointer) throws(WebSocketError) -> R) throws(WebSocketError) -> R {
    let result: Result<R, WebSocketError> = bytes.withUnsafeBytes { raw in
        do throws(WebSocketError) { return .success(try body(raw)) } catch { return .failure(error) }
    }
    return try result.get()
}

func withFrameBytes<R>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(WebSocketError) -> R) throws(WebSocketError) -> R {
    try withFrameBytes(bytes[...], body)
}
