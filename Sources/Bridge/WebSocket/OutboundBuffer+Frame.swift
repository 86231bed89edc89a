extension OutboundBuffer {
    /// One unmasked server frame, header and payload in one allocation, written once.
    public static func webSocketFrame(_ opcode: Opcode, _ payload: [UInt8]) -> OutboundBuffer {
        let headerLength = FrameEncoder.headerLength(payloadLength: payload.count)
        return OutboundBuffer(count: headerLength + payload.count) { target in
            let written = FrameEncoder.writeHeader(opcode: opcode, payloadLength: payload.count, to: target.baseAddress!)
            payload.withUnsafeBytes { source in
                if !source.isEmpty {
                    (target.baseAddress! + written).copyMemory(from: source.baseAddress!, byteCount: source.count)
                }
            }
        }
    }
}
