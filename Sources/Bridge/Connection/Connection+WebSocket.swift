/// Carries out the WebSocket exchange's actions: messages to the session, pongs, the closing
/// handshake and the keep-alive.
extension Connection {
    func receiveWebSocket(_ input: UnsafeRawBufferPointer) {
        let now = loop.now
        var offset = 0
        // A session may close the connection while it handles a message: the mode says so.
        while let step = mode.updateWebSocket({ $0.receive(UnsafeRawBufferPointer(rebasing: input[offset...]), now: now) }) {
            offset += step.consumed
            switch step.action {
            case nil:
                return
            case .deliver(let message, let session):
                session.received(message)
            case .pong(let frame):
                enqueuePong(frame)
            case .finish(let ending):
                finish(ending)
            case .fail(let error, let ending):
                Log.debug("websocket protocol error \(error.closeCode.rawValue): \(error.reason)", conn: id)
                finish(ending)
            }
            if offset >= input.count { return }
        }
    }

    /// Our close frame if it is still owed, the session told, then the TCP close once flushed.
    private func finish(_ ending: WebSocketExchange.Ending) {
        if let frame = ending.closeFrame { enqueue(frame) }
        ending.session?.closed(code: ending.code)
        closeAfterFlush()
    }

    /// Sends a text or binary message, encoded here for this one connection.
    public func send(_ opcode: Opcode, _ payload: [UInt8]) {
        sendWebSocketFrame(.webSocketFrame(opcode, payload))
    }

    public func send(text: String) {
        send(.text, Array(text.utf8))
    }

    /// Queues an already-encoded frame (shared by every recipient of a fan-out).
    public func sendWebSocketFrame(_ frame: OutboundBuffer) {
        guard mode.acceptsWebSocketOutput else { return }
        enqueue(frame)
    }

    /// Starts the closing handshake: our close frame now, the TCP close when the peer answers
    /// (or after `closeTimeout`).
    public func close(code: CloseCode, reason: String = "") {
        guard let frame = mode.updateWebSocket({ $0.close(code: code, reason: reason) }) ?? nil else { return }
        enqueue(frame)
        loop.schedule(self, afterSeconds: config.closeTimeout)
    }

    func webSocketDeadlineReached() {
        let now = loop.now
        guard let expiry = mode.updateWebSocket({ $0.deadlineReached(now: now) }) else { return }
        switch expiry {
        case .closeNow:
            closeNow()
        case .pongOverdue:
            Log.info("no answer to ping within \(config.webSocketPongTimeout) seconds", conn: id)
            if let (code, reason) = mode.webSocket?.session?.closeReason(for: .pongTimeout) {
                close(code: code, reason: reason)
            } else {
                closeNow()
            }
        case .ping(let frame):
            enqueue(frame)
            loop.schedule(self, afterSeconds: config.webSocketPongTimeout)
        case .wait(let tick):
            loop.schedule(self, atTick: tick)
        }
    }
}
