/// Why a request was rejected. Each case maps to the status the server answers with before it
/// closes the connection (after a framing error the next request's start cannot be known).
public enum HTTPParseError: Error, Equatable, Sendable {
    /// The bytes do not follow the HTTP/1.1 grammar; the reason is a short phrase. 400.
    case malformed(String)
    /// The request line and headers (or trailers) exceed `maxHeadBytes`. 431.
    case headTooLarge
    /// More header (or trailer) fields than `maxHeaderCount`. 431.
    case tooManyHeaders
    /// The body is, or is declared to be, larger than the body limit. 413.
    case bodyTooLarge
    /// Both Content-Length and Transfer-Encoding were sent (RFC 9112 §6.1). 400.
    case contentLengthWithTransferEncoding
    /// Content-Length is not a number, or several fields disagree (RFC 9110 §8.6). 400.
    case invalidContentLength
    /// A transfer coding other than `chunked` (RFC 9112 §6.1). 501.
    case unsupportedTransferEncoding
    /// An HTTP version other than 1.0 and 1.x (RFC 9110 §15.6.6). 505.
    case unsupportedVersion
    /// An `Expect` other than `100-continue` (RFC 9110 §10.1.1). 417.
    case unsupportedExpectation

    /// The HTTP status code to answer with.
    public var status: Int {
        switch self {
        case .malformed, .contentLengthWithTransferEncoding, .invalidContentLength: return 400
        case .headTooLarge, .tooManyHeaders: return 431
        case .bodyTooLarge: return 413
        case .unsupportedTransferEncoding: return 501
        case .unsupportedVersion: return 505
        case .unsupportedExpectation: return 417
        }
    }

    /// A short sentence for the JSON error body.
    public var message: String {
        switch self {
        case .malformed(let reason): return "Malformed request: \(reason)."
        case .headTooLarge: return "Request line and headers are too large."
        case .tooManyHeaders: return "Too many header fields."
        case .bodyTooLarge: return "Request body is too large."
        case .contentLengthWithTransferEncoding: return "Content-Length and Transfer-Encoding must not both be sent."
        case .invalidContentLength: return "Invalid Content-Length."
        case .unsupportedTransferEncoding: return "Only the chunked transfer coding is supported."
        case .unsupportedVersion: return "Only HTTP/1.0 and HTTP/1.1 are supported."
        case .unsupportedExpectation: return "Only the 100-continue expectation is supported."
        }
    }
}
