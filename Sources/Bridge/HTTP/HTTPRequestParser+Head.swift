/// The head of a request: the request line, each field line, and the fields that decide framing
/// and expectations, judged together once the head is complete.
extension HTTPRequestParser {
    mutating func parseRequestLine(_ line: UnsafeRawBufferPointer) throws(HTTPParseError) {
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
    mutating func parseFieldLine(_ line: UnsafeRawBufferPointer, keep: Bool) throws(HTTPParseError) {
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
    mutating func noteFramingField(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws(HTTPParseError) {
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
    mutating func noteContentLength(_ value: UnsafeRawBufferPointer) throws(HTTPParseError) {
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

    mutating func finishHead() throws(HTTPParseError) {
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
}
