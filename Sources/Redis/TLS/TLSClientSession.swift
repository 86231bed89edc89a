import COpenSSL
import Glibc
import Support
import System

/// One TLS session (an `SSL`) over a connected, non-blocking socket to Redis. It reads and
/// writes the socket itself; each call returns at once, and what it must wait for is kept per
/// kind of call: normally a read waits for readable and a write for writable, but OpenSSL may
/// need the other way round (a read that must send first, a write that must receive first).
/// `close()` frees the session and closes the socket; the connection calls it on every disconnect.
final class TLSClientSession {
    let socket: TCPSocket
    private var ssl: OpaquePointer?

    /// The poll event the handshake, a read and a write wait for.
    private(set) var handshakeAwaits = Int16(POLLOUT)
    private(set) var readAwaits = Int16(POLLIN)
    private(set) var writeAwaits = Int16(POLLOUT)
    /// The last read ended in WANT_READ: what OpenSSL holds is at most part of a record.
    private var readDrained = true

    /// Sets the session up for `host`: its certificate must name `host` (as an IP address SAN
    /// when `host` is one); a DNS name is also sent as SNI (RFC 6066 §3 forbids IP addresses there).
    init(context: TLSClientContext, socket: TCPSocket, host: String) throws(RedisDisconnectReason) {
        self.socket = socket
        OpenSSLErrorQueue.drain()
        guard let ssl = SSL_new(context.pointer) else { throw OpenSSLErrorQueue.failure("cannot make a TLS session") }
        self.ssl = ssl
        guard SSL_set_fd(ssl, socket.fd) == 1 else { throw OpenSSLErrorQueue.failure("cannot attach TLS to the socket") }
        if Self.isIPAddress(host) {
            guard X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1 else {
                throw OpenSSLErrorQueue.failure("cannot check the certificate for \(host)")
            }
        } else {
            SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
            guard SSL_set1_host(ssl, host) == 1, bridge_SSL_set_host_name(ssl, host) == 1 else {
                throw OpenSSLErrorQueue.failure("cannot check the certificate for \(host)")
            }
        }
        SSL_set_connect_state(ssl)
    }

    deinit { ssl.map { SSL_free($0) } }

    /// Frees the TLS session and closes the socket. Nothing is sent: the connection is dropped.
    func close() {
        ssl.map { SSL_free($0) }
        ssl = nil
        socket.close()
    }

    /// Moves the handshake on; true once it is done and the server's certificate verified.
    func handshake() throws(RedisDisconnectReason) -> Bool {
        guard let ssl else { return false }
        ERR_clear_error()
        let result = SSL_do_handshake(ssl)
        if result == 1 { return true }
        switch try outcome(of: result, in: "handshake") {
        case .wait(let event):
            handshakeAwaits = event
            return false
        case .closed:
            throw .tlsFailed("the server closed the connection during the handshake")
        }
    }

    /// Decrypted bytes; `.done(0)` when the server closed the connection.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(RedisDisconnectReason) -> IOResult<Int> {
        guard let ssl else { return .done(0) }
        ERR_clear_error()
        let count = SSL_read(ssl, buffer.baseAddress, Int32(clamping: buffer.count))
        readAwaits = Int16(POLLIN)
        readDrained = false
        if count > 0 { return .done(Int(count)) }
        switch try outcome(of: count, in: "read") {
        case .wait(let event):
            readAwaits = event
            readDrained = true
            return .wouldBlock
        case .closed:
            return .done(0)
        }
    }

    /// Encrypts and sends a prefix of `bytes`. After `.wouldBlock` the next call must start with
    /// the same bytes (SSL_write(3)); `OutputBuffer` keeps its front until it is written.
    func write(_ bytes: UnsafeRawBufferPointer) throws(RedisDisconnectReason) -> IOResult<Int> {
        guard let ssl else { return .wouldBlock }
        ERR_clear_error()
        let count = SSL_write(ssl, bytes.baseAddress, Int32(clamping: bytes.count))
        writeAwaits = Int16(POLLOUT)
        if count > 0 { return .done(Int(count)) }
        switch try outcome(of: count, in: "write") {
        case .wait(let event):
            writeAwaits = event
            return .wouldBlock
        case .closed:
            throw .closedByServer
        }
    }

    /// OpenSSL holds input the socket will not report again (`SSL_has_pending`): a read stopped
    /// before WANT_READ left it there.
    var hasBufferedInput: Bool {
        guard let ssl, !readDrained else { return false }
        return SSL_has_pending(ssl) == 1
    }

    private enum Outcome {
        /// Call again once poll reports this event.
        case wait(Int16)
        /// The server closed: `close_notify`, or a TCP close without one.
        case closed
    }

    /// What a call's result ≤ 0 means; a failure throws its reason, with OpenSSL's queue emptied.
    private func outcome(of result: Int32, in call: String) throws(RedisDisconnectReason) -> Outcome {
        let savedErrno = errno
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ:
            return .wait(Int16(POLLIN))
        case SSL_ERROR_WANT_WRITE:
            return .wait(Int16(POLLOUT))
        case SSL_ERROR_ZERO_RETURN:
            return .closed
        case SSL_ERROR_SYSCALL:
            let entries = OpenSSLErrorQueue.drain()
            if entries.isEmpty && savedErrno == 0 { return .closed }
            throw .tlsFailed("\(call) failed: " + (entries.first ?? String(cString: strerror(savedErrno))))
        default:
            let verified = SSL_get_verify_result(ssl)
            if verified != X509_V_OK {
                OpenSSLErrorQueue.drain()
                throw .tlsFailed("certificate verify failed: " + String(cString: X509_verify_cert_error_string(verified)))
            }
            throw OpenSSLErrorQueue.failure("\(call) failed")
        }
    }

    private static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}
