import Support

/// The server side of the opening handshake (RFC 6455 §4.2).
///
/// Extensions and subprotocols are never negotiated: the 101 response carries no
/// `Sec-WebSocket-Extensions` or `Sec-WebSocket-Protocol`, which declines whatever
/// the client offered (RFC 6455 §4.2.2, §9.1), so RSV bits stay reserved.
public enum WebSocketHandshake {
    /// RFC 6455 §1.3: the GUID appended to the client's key.
    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// base64(SHA-1(key + GUID)) (RFC 6455 §1.3, §4.2.2).
    public static func acceptValue(forKey key: String) -> String {
        Base64.encode(Digest.sha1(Array((key + guid).utf8)))
    }

    /// Checks an upgrade request (RFC 6455 §4.2.1) and returns the
    /// `Sec-WebSocket-Accept` value for the 101 response, or the response to send instead.
    ///
    /// Statuses: 405 (with `Allow: GET`) for another method; 400 for HTTP/1.0, which
    /// cannot upgrade; 426 with `Upgrade: websocket` for a request that is not a WebSocket
    /// upgrade at all (no `Upgrade: websocket` or no `Connection: upgrade`), which tells a
    /// plain HTTP client what this endpoint speaks (RFC 9110 §15.5.22); 426 with
    /// `Sec-WebSocket-Version: 13` for another or no version (RFC 6455 §4.4); 400 for a
    /// missing, repeated or malformed `Sec-WebSocket-Key`. `Host` is left to the HTTP
    /// parser, which must already refuse an HTTP/1.1 request without one (RFC 9112 §3.2).
    public static func validate(_ request: HTTPRequest) -> Result<String, HandshakeRejection> {
        guard request.method == "GET" else {
            return .failure(HandshakeRejection(status: 405, message: "WebSocket upgrade requires GET", headers: [("Allow", "GET")]))
        }
        guard request.version == .http1_1 else {
            return .failure(HandshakeRejection(status: 400, message: "WebSocket upgrade requires HTTP/1.1"))
        }
        let headers = request.headers
        guard headers.hasToken("websocket", in: "Upgrade"), headers.hasToken("upgrade", in: "Connection") else {
            return .failure(HandshakeRejection(status: 426, message: "Expected a WebSocket upgrade request", headers: [("Upgrade", "websocket")]))
        }
        // RFC 6455 §4.4: answer an unsupported version with the versions we speak.
        guard headers.hasToken("13", in: "Sec-WebSocket-Version") else {
            return .failure(HandshakeRejection(status: 426, message: "Unsupported WebSocket version", headers: [("Sec-WebSocket-Version", "13")]))
        }
        // RFC 6455 §4.2.1: exactly one key, base64 of a 16-byte nonce.
        let keys = headers.values("Sec-WebSocket-Key")
        guard keys.count == 1 else {
            return .failure(HandshakeRejection(status: 400, message: "Expected exactly one Sec-WebSocket-Key"))
        }
        let key = String(Substring(keys[0]).trimmingSpaces())
        guard let nonce = Base64.decode(key), nonce.count == 16 else {
            return .failure(HandshakeRejection(status: 400, message: "Sec-WebSocket-Key is not base64 of 16 bytes"))
        }
        return .success(acceptValue(forKey: key))
    }

    /// The complete 101 response (RFC 6455 §4.2.2).
    public static func switchingProtocolsResponse(accept: String) -> [UInt8] {
        Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(accept)\r\n\r\n".utf8)
    }
}
