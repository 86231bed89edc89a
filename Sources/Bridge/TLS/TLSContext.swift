import COpenSSL
import Glibc
import Support

/// One certificate's server context (an `SSL_CTX`): its chain and key, and the protocol settings
/// every TLS connection gets. Immutable once loaded; an `SSL` made from it holds its own reference,
/// so a reload can drop this object while connections still use it.
final class TLSContext: @unchecked Sendable {
    let pointer: OpaquePointer
    let files: TLSCertificateFiles

    private init(pointer: OpaquePointer, files: TLSCertificateFiles) {
        self.pointer = pointer
        self.files = files
    }

    deinit { SSL_CTX_free(pointer) }

    /// TLS 1.2's ciphers: forward-secret AEAD only, the "intermediate" choice of Mozilla's server
    /// guidance. TLS 1.3's suites are OpenSSL's defaults (all AEAD).
    static let tls12Ciphers = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    /// Loads the chain and key and refuses what would fail every handshake: unreadable files, a key
    /// that does not match, a certificate that has expired or is not valid yet.
    static func load(_ files: TLSCertificateFiles, server: TLSServer) throws(OpenSSLError) -> TLSContext {
        OpenSSLErrorQueue.drain()
        guard let pointer = SSL_CTX_new(TLS_server_method()) else { throw OpenSSLError("SSL_CTX_new failed") }
        let context = TLSContext(pointer: pointer, files: files)
        try context.configure(server: server)
        guard SSL_CTX_use_certificate_chain_file(pointer, files.certificatePath) == 1 else {
            throw OpenSSLError("cannot load the certificate chain \(files.certificatePath)")
        }
        guard SSL_CTX_use_PrivateKey_file(pointer, files.keyPath, SSL_FILETYPE_PEM) == 1 else {
            throw OpenSSLError("cannot load the private key \(files.keyPath)")
        }
        guard SSL_CTX_check_private_key(pointer) == 1 else {
            throw OpenSSLError("the key \(files.keyPath) does not match the certificate \(files.certificatePath)")
        }
        if let certificate = SSL_CTX_get0_certificate(pointer) {
            if X509_cmp_current_time(X509_get0_notAfter(certificate)) <= 0 {
                throw OpenSSLError("the certificate \(files.certificatePath) has expired")
            }
            if X509_cmp_current_time(X509_get0_notBefore(certificate)) >= 0 {
                throw OpenSSLError("the certificate \(files.certificatePath) is not valid yet")
            }
        }
        return context
    }

    private func configure(server: TLSServer) throws(OpenSSLError) {
        guard bridge_SSL_CTX_set_protocol_range(pointer, TLS1_2_VERSION, TLS1_3_VERSION) == 1 else {
            throw OpenSSLError("cannot limit the protocol to TLS 1.2 and 1.3")
        }
        // A TCP close without close_notify ends the stream like one: WebSocket and HTTP framing show truncation themselves.
        SSL_CTX_set_options(pointer, bridge_SSL_OP_NO_RENEGOTIATION() | bridge_SSL_OP_NO_COMPRESSION() | bridge_SSL_OP_IGNORE_UNEXPECTED_EOF())
        guard SSL_CTX_set_cipher_list(pointer, Self.tls12Ciphers) == 1 else { throw OpenSSLError("cannot set the TLS 1.2 ciphers") }
        // Release the 2×16 KiB record buffers of idle connections; write what a turn queued in
        // records as they fill (partial writes), from wherever the queue holds it (moving buffer).
        _ = bridge_SSL_CTX_set_mode(pointer, Int(SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE
                                                 | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER))
        // Resumption by session tickets only (SessionTicketKeys): no per-session server memory.
        _ = bridge_SSL_CTX_set_session_cache_mode(pointer, Int(SSL_SESS_CACHE_OFF))
        _ = bridge_SSL_CTX_set_ticket_key_callback(pointer, SessionTicketKeys.callback)
        SSL_CTX_set_alpn_select_cb(pointer, selectHTTP11, nil)
        bridge_SSL_CTX_set_servername_callback(pointer, TLSServer.serverNameCallback, Unmanaged.passUnretained(server).toOpaque())
    }
}

/// ALPN: HTTP/1.1 is the one protocol served (a WebSocket upgrade is an HTTP/1.1 request). A client
/// that offers only others gets no ALPN answer and may go on or give up (RFC 7301 §3.2 allows either).
private func selectHTTP11(_ ssl: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
                          _ outLength: UnsafeMutablePointer<UInt8>?, _ offered: UnsafePointer<UInt8>?, _ offeredLength: UInt32,
                          _ argument: UnsafeMutableRawPointer?) -> Int32 {
    guard let offered, let out, let outLength else { return SSL_TLSEXT_ERR_NOACK }
    let wanted: [UInt8] = Array("http/1.1".utf8)
    var index = 0
    let end = Int(offeredLength)
    while index < end {
        let length = Int(offered[index])
        let start = index + 1
        guard start + length <= end else { break }
        if length == wanted.count && (0..<length).allSatisfy({ offered[start + $0] == wanted[$0] }) {
            out.pointee = offered + start
            outLength.pointee = UInt8(length)
            return SSL_TLSEXT_ERR_OK
        }
        index = start + length
    }
    return SSL_TLSEXT_ERR_NOACK
}
