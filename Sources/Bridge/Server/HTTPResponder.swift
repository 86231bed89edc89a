import Synchronization

/// The way a `.deferredHTTP` handler answers later. `respond` may be called from any thread; the
/// first call counts and later ones are ignored. An answer given while the handler still runs is
/// sent at once; a later one goes through the connection's loop, and is dropped when the
/// connection has closed, timed out (504) or been replaced by another one on the same fd meanwhile.
public final class HTTPResponder: Sendable {
    let request: HTTPRequest
    private let phase = Mutex(Phase.handling)
    /// Carries an answer given after the handler returned to the connection's loop.
    private let deliverLater: @Sendable (HTTPResponder, HTTPResponse) -> Void

    private enum Phase {
        /// The handler has not returned yet.
        case handling
        case answeredInHandler(HTTPResponse)
        /// The handler returned without an answer: the connection waits for one.
        case waiting
        case done
    }

    init(request: HTTPRequest, deliverLater: @escaping @Sendable (HTTPResponder, HTTPResponse) -> Void) {
        self.request = request
        self.deliverLater = deliverLater
    }

    /// A responder for `connection`: a late answer goes through its loop and reaches it only
    /// while it still waits for this very answer (the fd may hold another connection by then).
    convenience init(connection: Connection, request: HTTPRequest) {
        let loop = connection.loop
        let fd = connection.fd
        let generation = connection.generation
        self.init(request: request) { responder, response in
            loop.execute { loop in
                guard let connection = loop.connections[fd], connection.generation == generation,
                      connection.isAwaiting(responder) else { return }
                connection.answerDeferred(response, to: responder.request)
            }
        }
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
        deliverLater(self, response)
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
