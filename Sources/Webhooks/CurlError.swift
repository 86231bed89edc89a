import CCurl

/// A failed libcurl call: the `CURLcode` and its description.
public struct CurlError: Error, Equatable, CustomStringConvertible {
    /// The `CURLcode` value, e.g. 7 for `CURLE_COULDNT_CONNECT`.
    public let code: Int32
    /// `curl_easy_strerror(code)`: the generic text for the code.
    public let message: String
    /// curl's error buffer for this transfer (host, port, errno text), or empty.
    public let detail: String

    init(_ code: CURLcode, detail: String = "") {
        self.code = Int32(bitPattern: code.rawValue)
        self.message = String(cString: curl_easy_strerror(code))
        self.detail = detail
    }

    /// Whether the same request may succeed later: network and timing trouble
    /// is retryable; a bad URL, a refused protocol or a TLS certificate that
    /// does not verify stays wrong until someone changes the configuration.
    public var isRetryable: Bool {
        switch CURLcode(rawValue: UInt32(bitPattern: code)) {
        case CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT,
             CURLE_OPERATION_TIMEDOUT, CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING,
             CURLE_PARTIAL_FILE, CURLE_SSL_CONNECT_ERROR, CURLE_HTTP2, CURLE_HTTP2_STREAM,
             CURLE_SEND_FAIL_REWIND, CURLE_AGAIN, CURLE_OUT_OF_MEMORY:
            return true
        default:
            return false
        }
    }

    public var description: String {
        detail.isEmpty ? "curl error \(code): \(message)" : "curl error \(code): \(message) (\(detail))"
    }
}
