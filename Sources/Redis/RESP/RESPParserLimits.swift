/// Bounds the RESP parser enforces on what a server sends. Crossing one is a
/// `RESPParseError` as soon as the offending header or byte is read, before anything
/// is allocated for it; the connection is then dropped and re-established.
///
/// The defaults are far above anything Bridge stores (events are capped at a few KB,
/// presence hashes at a few thousand fields) and far below what would hurt the process.
public struct RESPParserLimits: Sendable, Equatable {
    /// Largest bulk string payload. Redis's own default cap (`proto-max-bulk-len`) is 512 MiB.
    public var maxBulkLength: Int
    /// Most elements in one array.
    public var maxArrayLength: Int
    /// Most arrays nested inside each other; a top-level array is depth 1.
    public var maxDepth: Int
    /// Longest status, error, integer or length line, without its CRLF.
    public var maxLineLength: Int
    /// Most bytes one whole reply (all its nested elements, headers included) may take.
    public var maxReplyBytes: Int

    public init(maxBulkLength: Int = 32 << 20, maxArrayLength: Int = 1 << 20, maxDepth: Int = 16,
                maxLineLength: Int = 64 << 10, maxReplyBytes: Int = 128 << 20) {
        precondition(maxBulkLength >= 0 && maxArrayLength >= 0 && maxDepth >= 0, "limits must not be negative")
        precondition(maxLineLength >= 0 && maxReplyBytes >= 0, "limits must not be negative")
        self.maxBulkLength = maxBulkLength
        self.maxArrayLength = maxArrayLength
        self.maxDepth = maxDepth
        self.maxLineLength = maxLineLength
        self.maxReplyBytes = maxReplyBytes
    }
}
