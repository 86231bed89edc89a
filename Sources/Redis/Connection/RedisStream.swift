import Glibc
import System

/// What the connection reads and writes: the TCP socket itself (`redis://`), or a TLS session
/// over it (`rediss://`). The one place the connection loop meets the difference: each call
/// returns at once, and the poll events to wait for come from here, since TLS may need the
/// socket readable to write or writable to read.
enum RedisStream {
    case plain(TCPSocket)
    case tls(TLSClientSession)

    var fd: Int32 {
        switch self {
        case .plain(let socket): socket.fd
        case .tls(let session): session.socket.fd
        }
    }

    /// Reads what is there; `.done(0)` means the server closed the connection.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(RedisDisconnectReason) -> IOResult<Int> {
        switch self {
        case .plain(let socket):
            do throws(SystemError) {
                return try socket.read(into: buffer)
            } catch {
                throw .socketError(error.description)
            }
        case .tls(let session):
            return try session.read(into: buffer)
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(RedisDisconnectReason) -> IOResult<Int> {
        switch self {
        case .plain(let socket):
            do throws(SystemError) {
                return try socket.write(bytes)
            } catch {
                throw .socketError(error.description)
            }
        case .tls(let session):
            return try session.write(bytes)
        }
    }

    /// The poll events that let a wanted read or write make progress.
    func pollEvents(reading: Bool, writing: Bool) -> Int16 {
        switch self {
        case .plain:
            (reading ? Int16(POLLIN) : 0) | (writing ? Int16(POLLOUT) : 0)
        case .tls(let session):
            (reading ? session.readAwaits : 0) | (writing ? session.writeAwaits : 0)
        }
    }

    /// Whether poll's answer `events` means a read may make progress: it reported what a read
    /// waits for, or an error or hang-up a read will surface, or TLS holds input already.
    func canRead(_ events: Int16) -> Bool {
        switch self {
        case .plain:
            events & Int16(POLLIN | POLLERR | POLLHUP) != 0
        case .tls(let session):
            events & (session.readAwaits | Int16(POLLERR | POLLHUP)) != 0 || session.hasBufferedInput
        }
    }

    func canWrite(_ events: Int16) -> Bool {
        switch self {
        case .plain: events & Int16(POLLOUT) != 0
        case .tls(let session): events & session.writeAwaits != 0
        }
    }

    /// Input already read off the socket and held for the next read, which poll cannot report.
    var hasBufferedInput: Bool {
        switch self {
        case .plain: false
        case .tls(let session): session.hasBufferedInput
        }
    }

    /// Closes the socket, freeing the TLS session first.
    func close() {
        switch self {
        case .plain(let socket): socket.close()
        case .tls(let session): session.close()
        }
    }
}
