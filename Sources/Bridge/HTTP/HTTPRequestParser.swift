/// An incremental HTTP/1.1 request parser (RFC 9112): a value type with no I/O. Feed it bytes as
/// they arrive and act on the events it reports.
///
///     request      = request-line *( field-line CRLF ) CRLF [ body ]
///     request-line = method SP request-target SP HTTP-version CRLF
///     field-line   = field-name ":" OWS field-value OWS
///     chunked-body = *( chunk-size [ chunk-ext ] CRLF chunk-data CRLF ) "0" [ chunk-ext ] CRLF
///                    *( field-line CRLF ) CRLF
///
/// Lines must end in CRLF. RFC 9112 §2.2 lets a recipient accept a bare LF; we reject it, and a bare
/// CR, because a parser more lenient than a proxy in front of it is how request smuggling starts.
///
/// The parser keeps its own partial state (the current line, the body so far), so the caller never
/// holds on to input: each call consumes everything it is given except the bytes after a
/// `.headComplete` (so the caller can set the body limit first) or after a `.requestComplete` (they
/// belong to the next request, or to the protocol an upgrade switched to).
public struct HTTPRequestParser: Sendable {
    private enum State: Sendable {
        case requestLine
        case headers
        /// `.headComplete` was reported; the body starts at the next call.
        case headComplete
        case body(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case failed(HTTPParseError)
    }

    /// What the head says about framing and expectations, gathered field by field.
    private struct HeadFacts: Sendable {
        var contentLength: Int?
        var hasTransferEncoding = false
        var chunkedCount = 0
        var hasOtherCoding = false
        var hostCount = 0
        var expectsContinue = false
        var hasOtherExpectation = false
    }

    private let limits: HTTPParserLimits
    private var state: State = .requestLine
    /// A line that arrived in pieces. Released after each request so an idle parser holds no buffer.
    private var lineBuffer: [UInt8] = []
    private var skippedEmptyLine = false
    private var headBytes = 0
    private var fieldCount = 0
    private var request = Self.emptyRequest
    /// The head's fields, handed to `request.headers` when the head is complete.
    private var fields: [(name: String, value: String)] = []
    private var facts = HeadFacts()
    private var body: [UInt8] = []
    private var bodyLimit: Int

    /// True when the head announced `Expect: 100-continue`, a body is expected, and no body byte
    /// has arrived yet: the moment to send `100 Continue` (RFC 9110 §10.1.1). An HTTP/1.0 request's
    /// expectation is ignored, as that section requires.
    public private(set) var expectsContinue = false

    public init(limits: HTTPParserLimits = HTTPParserLimits()) {
        self.limits = limits
        self.bodyLimit = limits.maxBodyBytes
    }

    /// Consumes bytes of `input` and reports at most one event. Call again with the unconsumed rest
    /// (`input[consumed...]`) until it returns a nil event, which it does only after consuming all of
    /// `input`. A request without a body still needs that further call (possibly with empty input)
    /// to turn `.headComplete` into `.requestComplete`. After an error the parser stays failed and
    /// rethrows it; the connection cannot be resynchronised.
    public mutating func parse(_ input: UnsafeRawBufferPointer) throws(HTTPParseError) -> (consumed: Int, event: HTTPParseEvent?) {
        do {
            return try step(input)
        } catch {
            state = .failed(error)
            throw error
        }
    }

    /// Right after `.headComplete` and until `.requestComplete`: the head of the request being
    /// parsed (method, target, path, query, version, headers; body empty).
    public var head: HTTPRequest? {
        switch state {
        case .headComplete, .body, .chunkSize, .chunkData, .chunkDataEnd, .trailers: return request
        case .requestLine, .headers, .failed: return nil
        }
    }

    /// Only valid right after `.headComplete`: sets this request's body limit (the default is
    /// `limits.maxBodyBytes`). Throws `.bodyTooLarge` at once if a declared Content-Length exceeds it.
    public mutating func setBodyLimit(_ bytes: Int) throws(HTTPParseError) {
        guard case .headComplete = state else {
            preconditionFailure("setBodyLimit is only valid right after .headComplete")
        }
        bodyLimit = max(0, bytes)
        if let length = facts.contentLength, length > bodyLimit {
            state = .failed(.bodyTooLarge)
            throw .bodyTooLarge
        }
    }

    /// True when no bytes of a next request are buffered (between requests). One skipped empty
    /// line before a request does not count as a started request.
    public var isIdle: Bool {
        if case .requestLine = state { return lineBuffer.isEmpty }
        return false
    }

    private mutating func step(_ input: UnsafeRawBufferPointer) throws(HTTPParseError) -> (consumed: Int, event: HTTPParseEvent?) {
        var index = 0
        while true {
            switch state {
            case .failed(let error):
                throw error
            case .headComplete:
                if let event = try startBody() { return (index, event) }
            case .body(let remaining):
                guard index < input.count else { return (index, nil) }
                let n = min(remaining, input.count - index)
                appendBody(input, from: index, count: n)
                index += n
                if n == remaining { return (index, finishRequest()) }
                state = .body(remaining: remaining - n)
            case .chunkData(let remaining):
                guard index < input.count else { return (index, nil) }
                let n = min(remaining, input.count - index)
                appendBody(input, from: index, count: n)
                index += n
                state = n == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - n)
            case .requestLine, .headers, .chunkSize, .chunkDataEnd, .trailers:
                guard index < input.count else { return (index, nil) }
                // Chunk-size bytes count as body bytes: a client that sends them did not wait.
                expectsContinue = false
                guard let (next, event) = try readLine(input, from: index) else { return (input.count, nil) }
                index = next
                if let event { return (index, event) }
            }
        }
    }

    // MARK: Lines

    /// Finds the line that starts at `start` (or continues `lineBuffer`) and handles it. Returns nil
    /// after buffering an incomplete line. The scan stops at the line's budget, so an over-long
    /// line is rejected as soon as its bytes arrive, not when its end does.
    private mutating func readLine(_ input: UnsafeRawBufferPointer, from start: Int) throws(HTTPParseError) -> (next: Int, event: HTTPParseEvent?)? {
        let budget: Int
        let tooLong: HTTPParseError
        switch state {
        case .chunkSize:
            budget = limits.maxChunkLineBytes
            tooLong = .malformed("chunk size line too long")
        case .chunkDataEnd:
            budget = 2
            tooLong = .malformed("chunk data not followed by CRLF")
        default:
            budget = limits.maxHeadBytes - headBytes
            tooLong = .headTooLarge
        }
        let room = budget - lineBuffer.count
        let scanEnd = min(input.count, start + max(0, room))
        var end = start
        while end < scanEnd, input[end] != Self.lf { end += 1 }
        if end == scanEnd {
            // No LF within budget: too long if more bytes are here or no room is left for the LF.
            if scanEnd < input.count || end - start >= room { throw tooLong }
            lineBuffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[start..<end]))
            return nil
        }
        let next = end + 1
        if lineBuffer.isEmpty {
            return (next, try handleLine(UnsafeRawBufferPointer(rebasing: input[start..<next])))
        }
        lineBuffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[start..<next]))
        let line = lineBuffer
        lineBuffer = []
        let result = line.withUnsafeBytes { bytes in
            Result { () throws(HTTPParseError) in try self.handleLine(bytes) }
        }
        return (next, try result.get())
    }

    /// Handles one complete line, `line` ending in LF.
    private mutating func handleLine(_ line: UnsafeRawBufferPointer) throws(HTTPParseError) -> HTTPParseEvent? {
        // RFC 9112 §2.2: CRLF only.
        guard line.count >= 2, line[line.count - 2] == Self.cr else { throw .malformed("line not ended by CRLF") }
        let content = UnsafeRawBufferPointer(rebasing: line[0..<(line.count - 2)])
        switch state {
        case .requestLine:
            if content.isEmpty {
                // RFC 9112 §2.2: ignore at least one empty line before a request; we ignore exactly one.
                guard !skippedEmptyLine else { throw .malformed("empty line before request line") }
                skippedEmptyLine = true
                return nil
            }
            headBytes += line.count
            try parseRequestLine(content)
            state = .headers
            return nil
        case .headers:
            headBytes += line.count
            if content.isEmpty {
                try finishHead()
                state = .headComplete
                return .headComplete
            }
            try parseFieldLine(content, keep: true)
            return nil
        case .chunkSize:
            try parseChunkSize(content)
            return nil
        case .chunkDataEnd:
            guard content.isEmpty else { throw .malformed("chunk data not followed by CRLF") }
            state = .chunkSize
            return nil
        case .trailers:
            headBytes += line.count
            if content.isEmpty { return finishRequest() }
            // RFC 9112 §7.1.2: trailer fields are checked and counted, then discarded.
            try parseFieldLine(content, keep: false)
            return nil
        case .headComplete, .body, .chunkData, .failed:
            preconditionFailure("no line is read in this state")
        }
    }

    // MARK: Request line

    private mutating func parseRequestLine(_ line: UnsafeRawBufferPointer) throws(HTTPParseError) {
        var i = 0
        while i < line.count, line[i] != Self.sp {
            guard Self.isTokenChar(line[i]) else { throw .malformed("invalid method") }
            i += 1
        }
        guard i > 0, i < line.count else { throw .malformed("invalid request line") }
        let methodEnd = i
        i += 1
        let targetStart = i
        while i < line.count, line[i] != Self.sp {
            // RFC 9112 §3.2: the target has no whitespace, controls or raw non-ASCII bytes.
            guard line[i] > 0x20, line[i] < 0x7F else { throw .malformed("invalid character in request target") }
            i += 1
        }
        guard i > targetStart, i < line.count else { throw .malformed("invalid request line") }
        let version = try Self.parseVersion(UnsafeRawBufferPointer(rebasing: line[(i + 1)...]))
        let method = String(decoding: UnsafeRawBufferPointer(rebasing: line[0..<methodEnd]), as: UTF8.self)
        let target = UnsafeRawBufferPointer(rebasing: line[targetStart..<i])
        let (path, query) = try Self.splitTarget(target, method: method)
        request = HTTPRequest(method: method, target: String(decoding: target, as: UTF8.self),
                              path: path, query: query, version: version)
    }

    // MARK: Header fields

    /// One `name: value` line of the head, or of the trailer section when `keep` is false.
    private mutating func parseFieldLine(_ line: UnsafeRawBufferPointer, keep: Bool) throws(HTTPParseError) {
        fieldCount += 1
        guard fieldCount <= limits.maxHeaderCount else { throw .tooManyHeaders }
        // RFC 9112 §5.2: obs-fold, and RFC 9112 §2.2: whitespace before the first field line.
        guard line[0] != Self.sp, line[0] != Self.htab else { throw .malformed("obsolete line folding") }
        var colon = 0
        while colon < line.count, line[colon] != Self.colon {
            let byte = line[colon]
            // RFC 9112 §5.1: no whitespace between the field name and the colon.
            guard byte != Self.sp, byte != Self.htab else { throw .malformed("whitespace before colon") }
            guard Self.isTokenChar(byte) else { throw .malformed("invalid header name") }
            colon += 1
        }
        guard colon < line.count else { throw .malformed("header line without colon") }
        guard colon > 0 else { throw .malformed("empty header name") }
        var start = colon + 1
        var end = line.count
        while start < end, Self.isOWS(line[start]) { start += 1 }
        while end > start, Self.isOWS(line[end - 1]) { end -= 1 }
        for i in start..<end {
            // RFC 9110 §5.5: NUL, CR, LF (and the other controls) are invalid in a field value.
            let byte = line[i]
            guard byte >= 0x20 || byte == Self.htab, byte != 0x7F else {
                throw .malformed("invalid character in header value")
            }
        }
        guard keep else { return }
        let name = UnsafeRawBufferPointer(rebasing: line[0..<colon])
        let value = UnsafeRawBufferPointer(rebasing: line[start..<end])
        try noteFramingField(name, value)
        if fields.isEmpty { fields.reserveCapacity(16) }
        fields.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
    }

    /// Records the fields that decide framing and expectations; judged together in `finishHead`.
    private mutating func noteFramingField(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws(HTTPParseError) {
        if Self.equalsIgnoringCase(name, Self.contentLengthName) {
            try noteContentLength(value)
        } else if Self.equalsIgnoringCase(name, Self.transferEncodingName) {
            facts.hasTransferEncoding = true
            for coding in Self.listElements(value) {
                if Self.equalsIgnoringCase(coding, Self.chunkedToken) {
                    facts.chunkedCount += 1
                } else {
                    facts.hasOtherCoding = true
                }
            }
        } else if Self.equalsIgnoringCase(name, Self.hostName) {
            facts.hostCount += 1
        } else if Self.equalsIgnoringCase(name, Self.expectName) {
            if Self.equalsIgnoringCase(value, Self.continueToken) {
                facts.expectsContinue = true
            } else {
                facts.hasOtherExpectation = true
            }
        }
    }

    /// RFC 9110 §8.6: digits only; a list or repeated fields are accepted when every value is equal.
    private mutating func noteContentLength(_ value: UnsafeRawBufferPointer) throws(HTTPParseError) {
        var sawElement = false
        for element in value.split(separator: Self.comma, omittingEmptySubsequences: false) {
            let digits = Self.trimmedOWS(UnsafeRawBufferPointer(rebasing: element))
            guard !digits.isEmpty else { throw .invalidContentLength }
            var length = 0
            for byte in digits {
                guard Self.isDigit(byte) else { throw .invalidContentLength }
                let (times10, o1) = length.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(Int(byte - 0x30))
                guard !o1, !o2 else { throw .invalidContentLength }
                length = sum
            }
            if let known = facts.contentLength, known != length { throw .invalidContentLength }
            facts.contentLength = length
            sawElement = true
        }
        guard sawElement else { throw .invalidContentLength }
    }

    private mutating func finishHead() throws(HTTPParseError) {
        request.headers = HTTPHeaders(fields)
        fields = []
        // RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one otherwise.
        if request.version == .http1_1, facts.hostCount == 0 { throw .malformed("missing Host header") }
        if facts.hostCount > 1 { throw .malformed("more than one Host header") }
        if facts.hasTransferEncoding {
            // RFC 9112 §6.1: a request with both is a smuggling attempt, not a framing choice.
            if facts.contentLength != nil { throw .contentLengthWithTransferEncoding }
            // RFC 9112 §6.1: HTTP/1.0 has no transfer codings; its framing would be faulty.
            if request.version == .http1_0 { throw .malformed("Transfer-Encoding in an HTTP/1.0 request") }
            // RFC 9112 §6.1: we understand no coding but chunked.
            if facts.hasOtherCoding { throw .unsupportedTransferEncoding }
            // RFC 9112 §6.3: chunked, applied exactly once, frames the body.
            if facts.chunkedCount != 1 { throw .malformed("invalid Transfer-Encoding") }
        }
        // RFC 9110 §10.1.1: an unknown expectation gets 417.
        if facts.hasOtherExpectation { throw .unsupportedExpectation }
        let hasBody = facts.hasTransferEncoding || (facts.contentLength ?? 0) > 0
        expectsContinue = facts.expectsContinue && request.version == .http1_1 && hasBody
    }

    // MARK: Body

    /// Begins the body once the caller has had its chance to set the limit; nil while a body follows.
    private mutating func startBody() throws(HTTPParseError) -> HTTPParseEvent? {
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
    private mutating func parseChunkSize(_ line: UnsafeRawBufferPointer) throws(HTTPParseError) {
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

    private mutating func appendBody(_ input: UnsafeRawBufferPointer, from start: Int, count: Int) {
        body.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[start..<(start + count)]))
        expectsContinue = false
    }

    /// Hands out the finished request and resets for the next one, releasing every buffer.
    private mutating func finishRequest() -> HTTPParseEvent {
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

    private static let emptyRequest = HTTPRequest(method: "", target: "", path: "")
}
