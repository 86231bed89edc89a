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

    private var curlCode: CURLcode { CURLcode(rawValue: UInt32(bitPattern: code)) }

    /// Whether the same request may succeed later: network and timing trouble is retryable, and so
    /// is a receiver's certificate that does not verify (the fix — a CA file, a new certificate —
    /// is made elsewhere, like starting a receiver that refused the connection). A bad URL or a
    /// refused protocol stays wrong until someone changes the configuration.
    public var isRetryable: Bool {
        if isTLSFailure { return true }
        switch curlCode {
        case CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT,
             CURLE_OPERATION_TIMEDOUT, CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING,
             CURLE_PARTIAL_FILE, CURLE_HTTP2, CURLE_HTTP2_STREAM,
             CURLE_SEND_FAIL_REWIND, CURLE_AGAIN, CURLE_OUT_OF_MEMORY:
            return true
        default:
            return false
        }
    }

    /// The handshake failed or the receiver's certificate was refused (unknown CA, wrong host
    /// name, expired), or the target's CA file could not be used.
    public var isTLSFailure: Bool {
        switch curlCode {
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE,
             CURLE_SSL_ISSUER_ERROR:
            return true
        default:
            return false
        }
    }

    public var description: String {
        let head = "curl error \(code)" + (isTLSFailure ? " (TLS)" : "") + ": \(message)"
        return detail.isEmpty ? head : "\(head) (\(detail))"
    }
}
