/// Encodes server frames, which are never masked (RFC 6455 §5.1). The header can
/// be written into headroom in front of a payload, so a frame built once for
/// fan-out needs no second copy.
public enum FrameEncoder {
    /// Bytes the header takes for a payload of this length: 2, 4 (16-bit length)
    /// or 10 (64-bit length) (RFC 6455 §5.2).
    public static func headerLength(payloadLength: Int) -> Int {
        precondition(payloadLength >= 0, "negative payload length")
        if payloadLength <= 125 { return 2 }
        if payloadLength <= 0xFFFF { return 4 }
        return 10
    }

    /// Writes an unmasked header with the minimal length encoding at `destination`,
    /// which must have room for `headerLength(payloadLength:)` bytes. Returns the bytes written.
    @discardableResult
    public static func writeHeader(opcode: Opcode, fin: Bool = true, payloadLength: Int, to destination: UnsafeMutableRawPointer) -> Int {
        precondition(!opcode.isControl || (fin && payloadLength <= 125), "control frames are final and at most 125 bytes (RFC 6455 §5.5)")
        destination.storeBytes(of: (fin ? 0x80 : 0) | opcode.rawValue, as: UInt8.self)
        let length = headerLength(payloadLength: payloadLength)
        switch length {
        case 2:
            destination.storeBytes(of: UInt8(payloadLength), toByteOffset: 1, as: UInt8.self)
        case 4:
            destination.storeBytes(of: 126, toByteOffset: 1, as: UInt8.self)
            destination.storeBytes(of: UInt16(payloadLength).bigEndian, toByteOffset: 2, as: UInt16.self)
        default:
            destination.storeBytes(of: 127, toByteOffset: 1, as: UInt8.self)
            destination.storeBytes(of: UInt64(payloadLength).bigEndian, toByteOffset: 2, as: UInt64.self)
        }
        return length
    }

    /// A whole frame in a new array: for control frames and tests.
    public static func encode(opcode: Opcode, fin: Bool = true, payload: [UInt8]) -> [UInt8] {
        let headerLength = headerLength(payloadLength: payload.count)
        return [UInt8](unsafeUninitializedCapacity: headerLength + payload.count) { buffer, initialized in
            let base = UnsafeMutableRawPointer(buffer.baseAddress!)
            writeHeader(opcode: opcode, fin: fin, payloadLength: payload.count, to: base)
            payload.withUnsafeBytes { bytes in
                if let source = bytes.baseAddress {
                    (base + headerLength).copyMemory(from: source, byteCount: bytes.count)
                }
            }
            initialized = headerLength + payload.count
        }
    }

    /// The payload of a close frame: the code, then the reason cut to fit the 125-byte
    /// control frame limit (RFC 6455 §5.5, §5.5.1) at a character boundary so it stays UTF-8.
    public static func closePayload(code: CloseCode, reason: String) -> [UInt8] {
        var payload = [UInt8(truncatingIfNeeded: code.rawValue >> 8), UInt8(truncatingIfNeeded: code.rawValue)]
        let utf8 = Array(reason.utf8)
        var end = min(utf8.count, 123)
        if end < utf8.count {
            while end > 0 && utf8[end] & 0xC0 == 0x80 { end -= 1 }
        }
        payload.append(contentsOf: utf8[..<end])
        return payload
    }
}
