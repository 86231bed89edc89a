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
///
/// Split by facet: lines and states here, the head (request line, fields, framing) in
/// +Head, the body (lengths, chunks) in +Body, the target in +Target, byte classes in +Bytes.
/// The state is internal so the facets can share it; nothing outside the parser touches it.
public struct HTTPRequestParser: Sendable {
    enum State: Sendable {
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
    struct HeadFacts: Sendable {
        var contentLength: Int?
        var hasTransferEncoding = false
        var chunkedCount = 0
        var hasOtherCoding = false
        var hostCount = 0
        var expectsContinue = false
        var hasOtherExpectation = false
    }

    let limits: HTTPParserLimits
    var state: State = .requestLine
    /// A line that arrived in pieces. Released after each request so an idle parser holds no buffer.
    var lineBuffer: [UInt8] = []
    var skippedEmptyLine = false
    var headBytes = 0
    var fieldCount = 0
    var request = Self.emptyRequest
    /// The head's fields, handed to `request.headers` when the head is complete.
    var fields: [(name: String, value: String)] = []
    var facts = HeadFacts()
    var body: [UInt8] = []
    var bodyLimit: Int

    /// True when the head announced `Expect: 100-continue`, a body is expected, and no body byte
    /// has arrived yet: the moment to send `100 Continue` (RFC 9110 §10.1.1). An HTTP/1.0 request's
    /// expectation is ignored, as that section requires.
    public internal(set) var expectsContinue = false

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
}
