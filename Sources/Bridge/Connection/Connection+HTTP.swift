/// Carries out the HTTP exchange's actions: answers requests (handlers, deferred answers,
/// upgrades), keeps the deadlines, rejects what cannot be framed.
extension Connection {
    /// The first deadline: a connection that never sends a byte is cut off like a slow request.
    func startHTTP() {
        guard let exchange = mode.httpExchange else { return }
        loop.schedule(self, afterSeconds: exchange.requestTimeout)
    }

    func receiveHTTP(_ input: UnsafeRawBufferPointer) {
        let router = loop.server.router
        var offset = 0
        while let step = mode.updateHTTP({ $0.receive(UnsafeRawBufferPointer(rebasing: input[offset...]), router: router) }) {
            offset += step.consumed
            switch step.action {
            case nil:
                return
            case .send(let bytes):
                enqueue(bytes)
            case .startRequestDeadline:
                startHTTP()
            case .reject(let status, let message):
                reject(status: status, message: message)
            case .request(let request, let route):
                answer(request, route: route)
                if case .webSocket = mode, offset < input.count {
                    // Frames pipelined right behind the upgrade request belong to the WebSocket.
                    receiveWebSocket(UnsafeRawBufferPointer(rebasing: input[offset...]))
                }
            }
        }
    }

    /// Whether the connection waits for `responder`'s answer (a late one goes nowhere else).
    func isAwaiting(_ responder: HTTPResponder) -> Bool {
        mode.httpExchange?.awaited === responder
    }

    /// The deferred answer, back on this loop: queue it, then parse what was pipelined behind it.
    func answerDeferred(_ response: HTTPResponse, to request: HTTPRequest) {
        guard let held = mode.updateHTTP({ $0.answerArrived() }) else { return }
        respond(response, to: request)
        if !held.isEmpty { held.withUnsafeBytes { receiveHTTP($0) } }
    }

    private func answer(_ request: HTTPRequest, route: RouteMatch<Endpoint>) {
        let server = loop.server
        guard counted else {
            refuseOverCapacity(request, route: route)
            return
        }
        if CORSPolicy.isPreflight(request) {
            respond(server.cors.preflightResponse(for: request), to: request)
            return
        }
        switch route {
        case .found(.http(let handler), let parameters, _):
            respond(handler(request, parameters), to: request)
        case .found(.deferredHTTP(let handler), let parameters, _):
            let responder = HTTPResponder(connection: self, request: request)
            handler(request, parameters, responder)
            if let response = responder.handlerReturned() {
                // Answered within the handler: no trip through the loop's queue.
                respond(response, to: request)
            } else if mode.updateHTTP({ $0.await(responder) }) != nil {
                // A slow answer gets the request timeout, then 504.
                startHTTP()
            }
        case .found(.webSocket(let service), let parameters, _):
            upgrade(request, to: service, parameters: parameters)
        case .methodNotAllowed(let allowed):
            var response = HTTPResponse.error(405, "method \(request.method) not allowed here")
            response.headers.add("Allow", allowed.joined(separator: ", "))
            respond(response, to: request)
        case .notFound:
            respond(.error(404, "no route for \(request.path)"), to: request)
        }
    }

    func respond(_ response: HTTPResponse, to request: HTTPRequest) {
        var response = response
        loop.server.cors.decorate(&response, for: request)
        let keepAlive = mode.httpExchange?.keepsAlive(after: request, serverDraining: loop.isDraining) ?? false
        enqueue(OutboundBuffer(response.serialized(date: loop.httpDate, keepAlive: keepAlive, headOnly: request.method == "HEAD")))
        if keepAlive {
            loop.schedule(self, afterSeconds: config.keepAliveTimeout)
        } else {
            closeAfterFlush()
        }
    }

    /// A request the parser refused, one that timed out, or a connection past
    /// `--max-connections`: answer with the error and close, since the rest of the stream can
    /// no longer be framed.
    func reject(status: Int, message: String) {
        Log.debug("rejecting request: \(status) \(message)", conn: id)
        enqueue(OutboundBuffer(HTTPResponse.error(status, message).serialized(date: loop.httpDate, keepAlive: false)))
        closeAfterFlush()
    }

    /// A connection past `--max-connections` (or accepted while draining): 503, except that a
    /// WebSocket upgrade is accepted and closed at once, so that the client learns it in its own
    /// protocol (its service's code, e.g. Pusher's 4100 "back off and retry"; else 1013).
    private func refuseOverCapacity(_ request: HTTPRequest, route: RouteMatch<Endpoint>) {
        guard case .found(.webSocket(let service), _, _) = route,
              case .success(let accept) = WebSocketHandshake.validate(request) else {
            reject(status: 503, message: loop.isDraining ? "server shutting down"
                   : loop.group.memory.isOver ? "server over its memory threshold, retry later" : "server at connection limit, retry later")
            return
        }
        switchToWebSocket(accept: accept)
        let (code, reason) = service.overCapacityCloseReason(on: self) ?? (.tryAgainLater, "server at connection limit")
        close(code: code, reason: reason)
    }

    /// Sends the 101 and hands the connection's input to a WebSocket exchange.
    private func switchToWebSocket(accept: String) {
        enqueue(OutboundBuffer(WebSocketHandshake.switchingProtocolsResponse(accept: accept)))
        mode = .webSocket(WebSocketExchange(limits: config.webSocket, now: loop.now,
                                            pingInterval: EventLoop.ticks(config.webSocketPingInterval)))
    }

    func httpDeadlineReached() {
        guard let expiry = mode.httpExchange?.deadlineReached() else { return }
        switch expiry {
        case .answerOverdue(let responder):
            // Claimed by `respond` just now: that answer is already on its way to this loop.
            guard responder.claim(), let timeout = mode.httpExchange?.requestTimeout else { return }
            mode.updateHTTP { $0.gaveUpWaiting() }
            respond(.error(504, "no response within \(timeout) seconds"), to: responder.request)
        case .reject(let status, let message):
            reject(status: status, message: message)
        case .closeNow:
            closeNow()
        }
    }

    private func upgrade(_ request: HTTPRequest, to service: any WebSocketService, parameters: [String: String]) {
        switch WebSocketHandshake.validate(request) {
        case .failure(let rejection):
            var response = HTTPResponse.error(rejection.status, rejection.message)
            for (name, value) in rejection.headers { response.headers.add(name, value) }
            respond(response, to: request)
        case .success(let accept):
            if let refusal = service.shouldUpgrade(request, parameters: parameters) {
                respond(refusal, to: request)
                return
            }
            switchToWebSocket(accept: accept)
            Log.debug("websocket open on \(request.path)", conn: id)
            if let session = service.open(self, request: request, parameters: parameters) {
                opened(session)
            }
            // After open: the session may have its own ping interval, or the service closed already.
            if let exchange = mode.webSocket, !exchange.closeSent {
                loop.schedule(self, atTick: loop.now &+ exchange.pingInterval)
            }
        }
    }

    /// Keeps the session the service opened, with its keep-alive settings.
    private func opened(_ session: any WebSocketSession) {
        let interval = session.pingInterval.map(EventLoop.ticks)
        let frame = session.pingFrame
        if mode.updateWebSocket({ $0.opened(session, pingInterval: interval, pingFrame: frame) }) == nil {
            // The connection closed while the service opened it: that session is over already.
            session.closed(code: nil)
        }
    }
}
