import Synchronization

/// The way a `.deferredHTTP` handler answers later. `respond` may be called from any thread; the
/// first call counts and later ones are ignored. The answer is dropped when the connection has
/// closed, timed out (504) or been replaced by another one on the same fd meanwhile.
public final class HTTPResponder: Sendable {
    private let loop: EventLoop
    private let fd: Int32
    private let generation: UInt32
    let request: HTTPRequest
    private let answered = Atomic<Bool>(false)

    init(connection: Connection, request: HTTPRequest) {
        loop = connection.loop
        fd = connection.fd
        generation = connection.generation
        self.request = request
    }

    public func respond(_ response: HTTPResponse) {
        guard claim() else { return }
        loop.execute { [self] loop in
            // The connection is only reachable through its loop's table, and only while it still
            // waits for this very answer.
            guard let connection = loop.connections[fd], connection.generation == generation,
                  connection.http?.deferred === self else { return }
            connection.answerDeferred(response, to: request)
        }
    }

    /// True for the first caller only: `respond`, or the request deadline answering 504.
    func claim() -> Bool {
        answered.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }
}
