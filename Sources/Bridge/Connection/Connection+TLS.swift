import Glibc
import System

/// A connection accepted on the TLS listener: the same exchanges as a plain one, with TLS between
/// them and the socket. Input is decrypted into the loop's read buffer; output still leaves once
/// per turn, what the turn queued handed to one `SSL_write` (up to the loop's TLS scratch size).
extension Connection {
    /// Records read per readiness event before other connections get their turn; what OpenSSL
    /// still holds then is read at the end of the turn (the socket will not report it again).
    private static let tlsReadsPerEvent = 4

    func readTLS(_ tls: TLSStream) {
        if !tls.recordSeen {
            guard admitsTLS(tls) else { return }
        }
        for _ in 0..<Self.tlsReadsPerEvent {
            switch tls.read(into: loop.readBuffer) {
            case .done(let count):
                receive(UnsafeRawBufferPointer(rebasing: loop.readBuffer[0..<count]))
                guard !isClosed, !readingStopped else { return }
            case .wantRead:
                resumeWriteAfterRead(tls)
                return
            case .wantWrite:
                tls.readWaitsForWritable = true
                watchWritable(true)
                return
            case .closed:
                peerClosed()
                return
            case .failed(let error):
                Log.debug("TLS: \(error)", conn: id)
                closeNow()
                return
            }
        }
        resumeWriteAfterRead(tls)
        if tls.hasBufferedInput { readAgainAtEndOfTurn() }
    }

    private func resumeWriteAfterRead(_ tls: TLSStream) {
        guard tls.writeWaitsForReadable else { return }
        tls.writeWaitsForReadable = false
        flushTLS(tls)
    }

    private func readAgainAtEndOfTurn() {
        let address = self.address
        loop.enqueue { loop in
            guard let connection = loop.connections[address.fd], connection.generation == address.generation else { return }
            connection.readable()
        }
    }

    /// A TLS client's first byte opens a handshake record (content type 22). Anything else is
    /// someone speaking plain HTTP (or noise) to the TLS port: answered with a plain 400 and closed.
    private func admitsTLS(_ tls: TLSStream) -> Bool {
        var first: UInt8 = 0
        let count = recv(fd, &first, 1, Int32(MSG_PEEK))
        if count < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return false }
            closeNow()
            return false
        }
        if count == 0 {
            peerClosed()
            return false
        }
        if first == 22 {
            tls.recordSeen = true
            return true
        }
        Log.debug("plain text on the TLS port: refused", conn: id)
        self.tls = nil
        reject(status: 400, message: "this port speaks TLS: use https:// or wss://")
        return false
    }

    /// Writes what is queued through TLS until it is all sent or the session must wait.
    func flushTLS(_ tls: TLSStream) {
        if tls.readWaitsForWritable {
            tls.readWaitsForWritable = false
            readTLS(tls)
            guard !isClosed else { return }
        }
        let scratch = loop.tlsScratch
        while true {
            if tls.unfinishedWrite == 0 { output.placePongs() }
            guard output.pendingBytes > 0 else { break }
            let length = tls.unfinishedWrite > 0 ? tls.unfinishedWrite : min(output.pendingBytes, scratch.count)
            switch output.withFirstBytes(length, scratch: scratch, { tls.write($0) }) {
            case .done(let written):
                tls.unfinishedWrite = 0
                output.consume(written)
            case .wantWrite:
                tls.unfinishedWrite = length
                watchWritable(true)
                return
            case .wantRead:
                tls.unfinishedWrite = length
                tls.writeWaitsForReadable = true
                // Input resumes the write (readTLS); a writable socket would only wake us for nothing.
                watchWritable(tls.readWaitsForWritable)
                return
            case .closed:
                closeNow()
                return
            case .failed(let error):
                Log.debug("TLS write: \(error)", conn: id)
                closeNow()
                return
            }
        }
        watchWritable(tls.readWaitsForWritable)
        if case .draining = mode { finishDraining() }
    }
}
