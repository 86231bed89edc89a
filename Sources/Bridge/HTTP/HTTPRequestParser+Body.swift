/// The body of a request: Content-Length or chunked (RFC 9112 §6, §7.1), within the body limit,
/// and the reset that hands out the finished request.
extension HTTPRequestParser {
    /// Begins the body once the caller has had its chance to set the limit; nil while a body follows.
    mutating func startBody() throws(HTTPParseError) -> HTTPParseEvent? {
        if facts.hasTransferEncoding {
            state = .chunkSize
            return nil
        }
        let length = facts.contentLength ?? 0
        guard length <= bodyLimit else { throw .bodyTooLarge }
        if length == 0 { return finishRequest() }
        // Grow with the bytes that really arrive, not with what the peer claims it will send.
        body.reserveCapacity(min(length, 64 * 1024))
        state = .body(remaining: length)
        return nil
    }

    /// RFC 9112 §7.1: chunk-size [ chunk-ext ]. The body limit is checked against the size
    /// before a byte of the chunk is read.
    mutating func parseChunkSize(_ line: UnsafeRawBufferPointer) throws(HTTPParseError) {
        let room = bodyLimit - body.count
        var size = 0
        var i = 0
        while i < line.count, let digit = Self.hexValue(line[i]) {
            let (times16, o1) = size.multipliedReportingOverflow(by: 16)
            let (sum, o2) = times16.addingReportingOverflow(Int(digit))
            guard !o1, !o2, sum <= room else { throw .bodyTooLarge }
            size = sum
            i += 1
        }
        guard i > 0 else { throw .malformed("invalid chunk size") }
        let digitsEnd = i
        while i < line.count, Self.isOWS(line[i]) { i += 1 }
        // BWS is only allowed before a `;`, never alone after the size.
        guard i == digitsEnd || i < line.count else { throw .malformed("invalid chunk size") }
        if i < line.count {
            guard line[i] == Self.semicolon else { throw .malformed("invalid chunk size") }
            // RFC 9112 §7.1.1: extensions are ignored, but must not smuggle controls.
            for byte in UnsafeRawBufferPointer(rebasing: line[i...]) where byte < 0x20 && byte != Self.htab || byte == 0x7F {
                throw .malformed("invalid chunk extension")
            }
        }
        state = size == 0 ? .trailers : .chunkData(remaining: size)
    }

    mutating func appendBody(_ input: UnsafeRawBufferPointer, from start: Int, count: Int) {
        body.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[start..<(start + count)]))
        expectsContinue = false
    }

    /// Hands out the finished request and resets for the next one, releasing every buffer.
    mutating func finishRequest() -> HTTPParseEvent {
        var finished = request
        finished.body = body
        state = .requestLine
        lineBuffer = []
        skippedEmptyLine = false
        headBytes = 0
        fieldCount = 0
        request = Self.emptyRequest
        fields = []
        facts = HeadFacts()
        body = []
        bodyLimit = limits.maxBodyBytes
        expectsContinue = false
        return .requestComplete(finished)
    }

    static let emptyRequest = HTTPRequest(method: "", target: "", path: "")
}
