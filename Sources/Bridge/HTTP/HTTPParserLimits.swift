/// Size and count bounds for one HTTP/1.1 request. Every bound is checked as soon as the
/// number is known, so a hostile peer can make the parser hold at most these many bytes.
public struct HTTPParserLimits: Sendable {
    /// Bytes of the request line plus all header lines, each counted with its CRLF, plus the
    /// empty line that ends the head. Trailer lines of a chunked body count into the same budget.
    /// Default 16 KiB: larger than any header set a browser or SDK sends, small enough that an
    /// idle-but-slow client cannot pin much memory. Crossing it gives 431.
    public var maxHeadBytes: Int
    /// Header fields in the head plus trailer fields after a chunked body. Default 100; crossing it gives 431.
    public var maxHeaderCount: Int
    /// The default limit on a de-chunked body, in bytes. The caller may change it per request with
    /// `HTTPRequestParser.setBodyLimit(_:)` right after the head. Default 1 MiB; crossing it gives 413.
    public var maxBodyBytes: Int
    /// Bytes of one chunk-size line (size, extensions and CRLF). Default 1024: a size needs at most
    /// 16 hex digits, so this only leaves room for modest extensions. Crossing it gives 400.
    public var maxChunkLineBytes: Int

    public init(maxHeadBytes: Int = 16 * 1024, maxHeaderCount: Int = 100,
                maxBodyBytes: Int = 1 << 20, maxChunkLineBytes: Int = 1024) {
        self.maxHeadBytes = maxHeadBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
        self.maxChunkLineBytes = maxChunkLineBytes
    }
}
