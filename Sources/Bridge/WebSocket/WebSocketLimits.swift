/// Bounds the decoder enforces while it reads a client's frames.
public struct WebSocketLimits: Sendable {
    /// Largest payload accepted in one frame; a larger declared length closes the
    /// connection with 1009 as soon as the length field is read, before any payload
    /// is buffered. Default 1 MiB: Pusher messages are capped at 10 KB by Pusher
    /// itself, so this leaves ample room for large events while bounding what one
    /// connection can make the server hold.
    public var maxFrameBytes: Int

    /// Largest message accepted across all of its fragments; exceeding it closes with
    /// 1009 as soon as a frame header would take the running total over. Default 1 MiB,
    /// for the same reason as `maxFrameBytes`: a fragmented message must not escape the
    /// bound a single frame has.
    public var maxMessageBytes: Int

    public init(maxFrameBytes: Int = 1 << 20, maxMessageBytes: Int = 1 << 20) {
        precondition(maxFrameBytes >= 0 && maxMessageBytes >= 0, "limits must not be negative")
        self.maxFrameBytes = maxFrameBytes
        self.maxMessageBytes = maxMessageBytes
    }
}
