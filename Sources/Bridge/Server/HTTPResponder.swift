import Synchronization

/// The way a `.deferredHTTP` handler answers later. `respond` may be called from any thread; the
/// first call counts and later ones are ignored. An answer given while the handler still runs is
/// sent at once; a later one goes through the connection's loop, and is dropped when the
/// connection has closed, timed out (504) or been replaced by another one on the same fd meanwhile.
public final class HTTPResponder: Sendable {
    private let loop: EventLoop
    private let fd: Int32
    private let generation: UInt32
    let request: HTTPRequest
    private let phase = Mutex(Phase.handling)

    private enum Phase {
        /// The handler has not returned yet.
        case handling
        case answeredInHandler(HTTPResponse)
        /// The handler returned without an answer: the connection waits for one.
        case waiting
        case done
    }

    init(connection: Connection, request: HTTPRequest) {
        loop = connection.loop
        fd = connection.fd
        generation = connection.generation
        self.request = request
    }

    public func respond(_ response: HTTPResponse) {
        let later = phase.withLock { phase -> Bool in
            switch phase {
            case .handling:
                phase = .answeredInHandler(response)
                return false
            case .waiting:
                phase = .done
                return true
            case .answeredInHandler, .done:
                return false
            }
        }
        guard later else { return }
        loop.execute { [self] loop in
            // The connection is only reachable through its loop's table, and only while it still
            // waits for this very answer.
            guard let connection = loop.connections[fd], connection.generation == generation,
                  connection.http?.deferred === self else { return }
            connection.answerDeferred(response, to: request)
        }
    }

    /// Called once the handler returned: its answer, if it gave one; else answers come later.
    func handlerReturned() -> HTTPResponse? {
        phase.withLock { phase in
            if case .answeredInHandler(let response) = phase {
                phase = .done
                return response
            }
            phase = .waiting
            return nil
        }
    }

    /// True when no answer came before the deadline: the caller answers 504 and later ones are ignored.
    func claim() -> Bool {
        phase.withLock { phase in
            guard case .waiting = phase else { return false }
            phase = .done
            return true
        }
    }
}
