import COpenSSL
import Support

/// What every TLS connection to Redis is made from (an `SSL_CTX`): TLS 1.2 or later, and the
/// server's certificate verified against the system's CA store plus `RedisOptions.tlsCAFile`.
/// There is no way to turn verification off. A new one is made for each connection attempt (a
/// handful of milliseconds, and only on reconnects), so a renewed CA file counts from the next one.
final class TLSClientContext {
    let pointer: OpaquePointer

    private init(pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit { SSL_CTX_free(pointer) }

    static func make(caFile: String?) throws(RedisDisconnectReason) -> TLSClientContext {
        OpenSSLErrorQueue.drain()
        guard let pointer = SSL_CTX_new(TLS_client_method()) else { throw OpenSSLErrorQueue.failure("cannot make a TLS context") }
        let context = TLSClientContext(pointer: pointer)
        guard bridge_SSL_CTX_set_protocol_range(pointer, TLS1_2_VERSION, 0) == 1 else {
            throw OpenSSLErrorQueue.failure("cannot require TLS 1.2 or later")
        }
        // A system without a CA store still verifies against the CA file; one with neither
        // fails every handshake with "unable to get local issuer certificate".
        if SSL_CTX_set_default_verify_paths(pointer) != 1 { OpenSSLErrorQueue.drain() }
        if let caFile, SSL_CTX_load_verify_locations(pointer, caFile, nil) != 1 {
            throw OpenSSLErrorQueue.failure("cannot load the CA file \(caFile)")
        }
        SSL_CTX_set_verify(pointer, SSL_VERIFY_PEER, nil)
        // A server that goes away without close_notify reads as an ordinary close (RESP shows a
        // cut-off reply itself); renegotiation and compression are never wanted.
        SSL_CTX_set_options(pointer, bridge_SSL_OP_NO_RENEGOTIATION() | bridge_SSL_OP_NO_COMPRESSION() | bridge_SSL_OP_IGNORE_UNEXPECTED_EOF())
        // `OutputBuffer` writes from wherever its front is (it compacts) and takes partial writes.
        _ = bridge_SSL_CTX_set_mode(pointer, Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER))
        return context
    }
}
