/*
 A WebSocket frame (RFC 6455 §5.2). Bits are numbered from the most significant
 bit of the first byte; multi-byte lengths are in network byte order.

   0                   1                   2                   3
   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
  +-+-+-+-+-------+-+-------------+-------------------------------+
  |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
  |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
  |N|V|V|V|       |S|             |   (if payload len==126/127)   |
  | |1|2|3|       |K|             |                               |
  +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
  |     Extended payload length continued, if payload len == 127  |
  + - - - - - - - - - - - - - - - +-------------------------------+
  |                               |Masking-key, if MASK set to 1  |
  +-------------------------------+-------------------------------+
  | Masking-key (continued)       |          Payload Data         |
  +-------------------------------- - - - - - - - - - - - - - - - +
  :                     Payload Data continued ...                :
  + - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - +

 Payload len 0–125 is the length; 126 means a 16-bit length follows, 127 a
 64-bit one whose top bit must be 0. Payload byte i is XORed with masking-key
 byte i mod 4 (§5.3). Clients always mask, servers never do (§5.1).
*/

/// Incremental parser of client frames: it reads a header byte by byte, so it can
/// be fed any split of the stream, then unmasks the payload as the caller copies it.
///
/// Every header rule is checked on the byte that decides it, before any payload is
/// buffered: a 1 GiB length is refused on its first length byte. Length fields that
/// are not minimal (a 5-byte payload sent with a 16-bit length) are accepted: the
/// "minimal number of bytes" rule of §5.2 binds the sender, and rejecting them buys
/// no safety, since the length is bounded by `maxFrameBytes` either way.
public struct FrameParser: Sendable {
    /// What a frame header declares.
    public struct Header: Sendable, Equatable {
        public var fin: Bool
        public var opcode: Opcode
        public var payloadLength: Int

        public init(fin: Bool, opcode: Opcode, payloadLength: Int) {
            self.fin = fin
            self.opcode = opcode
            self.payloadLength = payloadLength
        }
    }

    private enum Stage: UInt8 {
        case first
        case second
        case extendedLength
        case maskingKey
        case payload
    }

    /// Frames declaring a longer payload are refused with 1009.
    public let maxFrameBytes: Int
    private var stage = Stage.first
    /// Bytes of the extended length or masking key still to read.
    private var owed: UInt8 = 0
    /// Position in the masking key of the next payload byte.
    private var maskPhase: UInt8 = 0
    /// FIN of the current (or last) frame.
    public private(set) var fin = false
    /// Opcode of the current (or last) frame.
    public private(set) var opcode = Opcode.continuation
    /// Key byte i sits in bits 8i..<8i+8, whatever the host byte order.
    private var maskingKey: UInt32 = 0
    /// The declared length while the header is read, then the payload bytes not yet read.
    public private(set) var payloadRemaining = 0

    public init(maxFrameBytes: Int) {
        precondition(maxFrameBytes >= 0, "maxFrameBytes must not be negative")
        self.maxFrameBytes = maxFrameBytes
    }

    /// True between a complete header and the last byte of its payload.
    public var isReadingPayload: Bool { stage == .payload }

    /// True when no byte of the next frame has been read yet.
    public var isBetweenFrames: Bool { stage == .first }

    /// Reads header bytes from `input`. Returns how many it consumed and, once the
    /// header is complete, the header; the payload then follows (read it with
    /// `readPayload` until `isReadingPayload` is false, which is at once for an empty one).
    /// Stops right after the header, so the rest of `input` is payload or the next frame.
    public mutating func readHeader(_ input: UnsafeRawBufferPointer) throws(WebSocketError) -> (consumed: Int, header: Header?) {
        precondition(stage != .payload, "readHeader called while a payload is pending")
        var index = 0
        while index < input.count {
            let byte = input[index]
            index += 1
            switch stage {
            case .first:
                try readFirstByte(byte)
            case .second:
                try readSecondByte(byte)
            case .extendedLength:
                // RFC 6455 §5.2: the most significant bit of a 64-bit length MUST be 0.
                if owed == 8 && byte & 0x80 != 0 { throw .invalidPayloadLength }
                owed -= 1
                payloadRemaining = payloadRemaining << 8 | Int(byte)
                // The final length is at least what is known so far shifted by the bytes to come.
                if payloadRemaining > maxFrameBytes >> (8 * Int(owed)) { throw .frameTooBig(limit: maxFrameBytes) }
                if owed == 0 {
                    owed = 4
                    stage = .maskingKey
                }
            case .maskingKey:
                maskingKey |= UInt32(byte) << (8 * (4 - UInt32(owed)))
                owed -= 1
                if owed == 0 {
                    let header = Header(fin: fin, opcode: opcode, payloadLength: payloadRemaining)
                    maskPhase = 0
                    stage = payloadRemaining == 0 ? .first : .payload
                    return (index, header)
                }
            case .payload:
                preconditionFailure("unreachable")
            }
        }
        return (index, nil)
    }

    /// Copies up to `payloadRemaining` bytes from `input` to `destination`, unmasked,
    /// and returns how many it copied. `destination` may be `input`'s own memory, to
    /// unmask in place.
    public mutating func readPayload(_ input: UnsafeRawBufferPointer, into destination: UnsafeMutableRawPointer) -> Int {
        precondition(stage == .payload, "readPayload called outside a payload")
        let count = min(input.count, payloadRemaining)
        guard count > 0, let source = input.baseAddress else { return 0 }
        Self.unmask(from: source, to: destination, count: count, key: maskingKey, phase: Int(maskPhase))
        maskPhase = UInt8(truncatingIfNeeded: (Int(maskPhase) + count) & 3)
        payloadRemaining -= count
        if payloadRemaining == 0 { stage = .first }
        return count
    }

    private mutating func readFirstByte(_ byte: UInt8) throws(WebSocketError) {
        // RFC 6455 §5.2: RSV1–3 MUST be 0 unless an extension defines them; we never negotiate one.
        guard byte & 0x70 == 0 else { throw .reservedBitsSet }
        let opcode = Opcode(rawValue: byte & 0x0F)
        // RFC 6455 §5.2: reserved opcodes fail the connection.
        guard !opcode.isReserved else { throw .reservedOpcode(opcode) }
        let fin = byte & 0x80 != 0
        // RFC 6455 §5.5: control frames MUST NOT be fragmented.
        guard fin || !opcode.isControl else { throw .fragmentedControlFrame }
        self.fin = fin
        self.opcode = opcode
        maskingKey = 0
        payloadRemaining = 0
        stage = .second
    }

    private mutating func readSecondByte(_ byte: UInt8) throws(WebSocketError) {
        // RFC 6455 §5.1: a server MUST close the connection on an unmasked client frame.
        guard byte & 0x80 != 0 else { throw .unmaskedFrame }
        let length = Int(byte & 0x7F)
        // RFC 6455 §5.5: control frames carry at most 125 bytes, so never an extended length.
        guard length <= 125 || !opcode.isControl else { throw .controlFrameTooLong }
        switch length {
        case 126:
            owed = 2
            stage = .extendedLength
        case 127:
            owed = 8
            stage = .extendedLength
        default:
            guard length <= maxFrameBytes else { throw .frameTooBig(limit: maxFrameBytes) }
            payloadRemaining = length
            owed = 4
            stage = .maskingKey
        }
    }

    /// XORs `count` bytes of `source` into `destination` with the masking key,
    /// starting at key byte `phase` (RFC 6455 §5.3). This is the per-byte hot path,
    /// so after at most three bytes that realign the key it works eight bytes at a time.
    static func unmask(from source: UnsafeRawPointer, to destination: UnsafeMutableRawPointer,
                       count: Int, key: UInt32, phase: Int) {
        var index = 0
        var phase = phase & 3
        while phase != 0 && index < count {
            let byte = source.load(fromByteOffset: index, as: UInt8.self) ^ UInt8(truncatingIfNeeded: key >> (8 * phase))
            destination.storeBytes(of: byte, toByteOffset: index, as: UInt8.self)
            index += 1
            phase = (phase + 1) & 3
        }
        let word = UInt64(littleEndian: UInt64(key) | UInt64(key) << 32)
        while index + 32 <= count {
            let a = source.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            let b = source.loadUnaligned(fromByteOffset: index + 8, as: UInt64.self)
            let c = source.loadUnaligned(fromByteOffset: index + 16, as: UInt64.self)
            let d = source.loadUnaligned(fromByteOffset: index + 24, as: UInt64.self)
            destination.storeBytes(of: a ^ word, toByteOffset: index, as: UInt64.self)
            destination.storeBytes(of: b ^ word, toByteOffset: index + 8, as: UInt64.self)
            destination.storeBytes(of: c ^ word, toByteOffset: index + 16, as: UInt64.self)
            destination.storeBytes(of: d ^ word, toByteOffset: index + 24, as: UInt64.self)
            index += 32
        }
        while index + 8 <= count {
            let value = source.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            destination.storeBytes(of: value ^ word, toByteOffset: index, as: UInt64.self)
            index += 8
        }
        while index < count {
            let byte = source.load(fromByteOffset: index, as: UInt8.self) ^ UInt8(truncatingIfNeeded: key >> (8 * phase))
            destination.storeBytes(of: byte, toByteOffset: index, as: UInt8.self)
            index += 1
            phase = (phase + 1) & 3
        }
    }
}
