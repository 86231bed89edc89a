extension Connection {
    func startHTTP() {
        http = HTTPExchange(limits: config.http)
        // A connection that never sends a byte is cut off like a slow request.
        loop.schedule(self, afterSeconds: requestTimeout)
    }

    /// One past the connection limit only gets to say what it wanted, and quickly.
    private var requestTimeout: Double {
        counted ? config.requestTimeout : min(config.requestTimeout, config.closeTimeout)
    }

    func handleHTTP(_ input: UnsafeRawBufferPointer) {
        if let exchange = http, exchange.deferred != nil {
            hold(input, exchange)
            return
        }
        var offset = 0
        // Keep calling after every event, even with no input left: a request without a body
        // completes on the call after `.headComplete`. Only a nil event means "need more bytes".
        parsing: while phase == .open, let exchange = http {
            let step: (consumed: Int, event: HTTPParseEvent?)
            do {
                step = try exchange.parser.parse(UnsafeRawBufferPointer(rebasing: input[offset...]))
            } catch {
                reject(status: error.status, message: error.message)
                return
            }
            offset += step.consumed
            switch step.event {
            case nil:
                break parsing
            case .headComplete:
                headComplete(exchange)
            case .requestComplete(let request):
                requestComplete(request, exchange)
                if decoder != nil {
                    // Frames pipelined right behind the upgrade request belong to the WebSocket.
                    if offset < input.count { handleWebSocket(UnsafeRawBufferPointer(rebasing: input[offset...])) }
                    return
                }
                if exchange.deferred != nil {
                    // Answers leave in request order: what follows waits for the deferred answer.
                    hold(UnsafeRawBufferPointer(rebasing: input[offset...]), exchange)
                    return
                }
            }
        }
        if let exchange = http, phase == .open, !exchange.requestInProgress, !exchange.parser.isIdle {
            // The first bytes of a request: from now on it must complete within the request timeout.
            exchange.requestInProgress = true
            loop.schedule(self, afterSeconds: requestTimeout)
        }
    }

    /// Keeps input that arrives while a deferred answer is pending, at most what one request may hold.
    private func hold(_ input: UnsafeRawBufferPointer, _ exchange: HTTPExchange) {
        exchange.heldInput.append(contentsOf: input)
        if exchange.heldInput.count > config.http.maxHeadBytes + config.http.maxBodyBytes {
            reject(status: 413, message: "too much pipelined input while a response is pending")
        }
    }

    /// The deferred answer, back on this loop: queue it, then parse what was pipelined behind it.
    func answerDeferred(_ response: HTTPResponse, to request: HTTPRequest) {
        guard let exchange = http else { return }
        exchange.deferred = nil
        respond(response, to: request)
        let held = exchange.heldInput
        exchange.heldInput = []
        if !held.isEmpty { held.withUnsafeBytes { handleHTTP($0) } }
    }

    private func headComplete(_ exchange: HTTPExchange) {
        guard let head = exchange.parser.head else { return }
        var limit = config.http.maxBodyBytes
        let route = loop.server.router.match(method: head.method, path: head.path)
        exchange.route = route
        if case .found(_, _, let routeLimit?) = route {
            limit = routeLimit
        }
        do {
            try exchange.parser.setBodyLimit(limit)
        } catch {
            reject(status: error.status, message: error.message)
            return
        }
        if exchange.parser.expectsContinue {
            enqueue(Connection.continueResponse)
        }
    }

    private static let continueResponse = OutboundBuffer("HTTP/1.1 100 Continue\r\n\r\n")

    private func requestComplete(_ request: HTTPRequest, _ exchange: HTTPExchange) {
        exchange.requestInProgress = false
        let server = loop.server
        guard counted else {
            refuseOverCapacity(request)
            return
        }
        if CORSPolicy.isPreflight(request) {
            respond(server.cors.preflightResponse(for: request), to: request)
            return
        }
        let route = exchange.route ?? server.router.match(method: request.method, path: request.path)
        exchange.route = nil
        switch route {
        case .found(.http(let handler), let parameters, _):
            respond(handler(request, parameters), to: request)
        case .found(.deferredHTTP(let handler), let parameters, _):
            let responder = HTTPResponder(connection: self, request: request)
            handler(request, parameters, responder)
            if let response = responder.handlerReturned() {
                // Answered within the handler: no trip through the loop's queue.
                respond(response, to: request)
            } else {
                exchange.deferred = responder
                // A slow answer gets the request timeout, then 504.
                loop.schedule(self, afterSeconds: requestTimeout)
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
        let keepAlive = request.keepAlive && !loop.isDraining && !(http?.closeAfterResponse ?? true)
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
        http = nil
        enqueue(OutboundBuffer(HTTPResponse.error(status, message).serialized(date: loop.httpDate, keepAlive: false)))
        closeAfterFlush()
    }

    /// A connection past `--max-connections` (or accepted while draining): 503, except that a
    /// WebSocket upgrade is accepted and closed at once, so that the client learns it in its own
    /// protocol (its service's code, e.g. Pusher's 4100 "back off and retry"; else 1013).
    private func refuseOverCapacity(_ request: HTTPRequest) {
        guard case .found(.webSocket(let service), _, _) = loop.server.router.match(method: request.method, path: request.path),
              case .success(let accept) = WebSocketHandshake.validate(request) else {
            reject(status: 503, message: loop.isDraining ? "server shutting down"
                   : loop.group.memory.isOver ? "server over its memory threshold, retry later" : "server at connection limit, retry later")
            return
        }
        switchToWebSocket(service, accept: accept)
        let (code, reason) = service.closeReason(for: .overCapacity, on: self) ?? (.tryAgainLater, "server at connection limit")
        close(code: code, reason: reason)
    }

    /// Sends the 101 and hands the connection's input to the WebSocket decoder and `service`.
    private func switchToWebSocket(_ service: any WebSocketService, accept: String) {
        enqueue(OutboundBuffer(WebSocketHandshake.switchingProtocolsResponse(accept: accept)))
        http = nil
        decoder = WebSocketDecoder(limits: config.webSocket)
        self.service = service
    }

    func httpDeadlineReached() {
        guard let exchange = http else { return }
        if let responder = exchange.deferred {
            // Claimed by `respond` just now: that answer is already on its way to this loop.
            guard responder.claim() else { return }
            exchange.deferred = nil
            exchange.heldInput = []
            exchange.closeAfterResponse = true
            respond(.error(504, "no response within \(requestTimeout) seconds"), to: responder.request)
        } else if exchange.requestInProgress {
            reject(status: 408, message: "request not completed within \(requestTimeout) seconds")
        } else {
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
            switchToWebSocket(service, accept: accept)
            lastActivity = loop.now
            Log.debug("websocket open on \(request.path)", conn: id)
            service.didOpen(self, request: request, parameters: parameters)
            // After didOpen: the service may have set its own ping interval, or closed already.
            if !closeSent { loop.schedule(self, afterSeconds: pingInterval ?? config.webSocketPingInterval) }
        }
    }
}
