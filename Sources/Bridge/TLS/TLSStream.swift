import COpenSSL
import Glibc
import Support

/// One connection's TLS session (an `SSL`) over its non-blocking socket. It reads and writes the
/// socket itself; the connection drives it from the loop and learns from each call whether it
/// must wait for the socket to become readable or writable — in either direction: a read may need
/// to write (a handshake answer), a write may need to read (OpenSSL processes pending input first).
final class TLSStream {
    private let ssl: OpaquePointer

    /// The length of an `SSL_write` that could not finish: OpenSSL must be given the same bytes
    /// again (`SSL_write(3)`), so the connection repeats exactly that much of its queue.
    var unfinishedWrite = 0
    /// A read (or the handshake) waits for the socket to take output.
    var readWaitsForWritable = false
    /// A write waits for input to arrive.
    var writeWaitsForReadable = false
    /// The first byte was seen to be a TLS record (see `Connection.admitsTLS`).
    var recordSeen = false

    init?(context: TLSContext, fd: Int32) {
        OpenSSLErrorQueue.drain()
        guard let ssl = SSL_new(context.pointer) else {
            OpenSSLErrorQueue.drain()
            return nil
        }
        self.ssl = ssl
        guard SSL_set_fd(ssl, fd) == 1 else {
            OpenSSLErrorQueue.drain()
            return nil
        }
        SSL_set_accept_state(ssl)
    }

    deinit { SSL_free(ssl) }

    enum Outcome {
        case done(Int)
        case wantRead
        case wantWrite
        /// The peer closed: `close_notify`, or a TCP close without one.
        case closed
        case failed(OpenSSLError)
    }

    /// Decrypted input (the handshake first, while it is not finished).
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Outcome {
        ERR_clear_error()
        let count = SSL_read(ssl, buffer.baseAddress, Int32(clamping: buffer.count))
        return count > 0 ? .done(Int(count)) : outcome(of: count)
    }

    /// Encrypts and sends `bytes` (in records as the socket takes them: partial writes are on).
    func write(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        ERR_clear_error()
        let count = SSL_write(ssl, bytes.baseAddress, Int32(clamping: bytes.count))
        return count > 0 ? .done(Int(count)) : outcome(of: count)
    }

    /// Decrypted or undecrypted input OpenSSL holds: the socket will not report it readable again.
    var hasBufferedInput: Bool { SSL_has_pending(ssl) == 1 }

    var isEstablished: Bool { SSL_is_init_finished(ssl) == 1 }

    /// Sends `close_notify` if the socket takes it now; an orderly close does not wait for the answer.
    func sendCloseNotify() {
        guard isEstablished else { return }
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        OpenSSLErrorQueue.drain()
    }

    private func outcome(of result: Int32) -> Outcome {
        let savedErrno = errno
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ:
            return .wantRead
        case SSL_ERROR_WANT_WRITE:
            return .wantWrite
        case SSL_ERROR_ZERO_RETURN:
            return .closed
        case SSL_ERROR_SYSCALL:
            let queued = OpenSSLErrorQueue.drain()
            // A TCP close (or reset) without close_notify: the peer is gone either way.
            if queued.isEmpty && (savedErrno == 0 || savedErrno == ECONNRESET || savedErrno == EPIPE) { return .closed }
            return .failed(OpenSSLError(queued.first ?? "I/O error: \(String(cString: strerror(savedErrno)))"))
        default:
            return .failed(OpenSSLError("TLS error"))
        }
    }
}
