extension Connection {
    func handleWebSocket(_ input: UnsafeRawBufferPointer) {
        lastActivity = loop.now
        pingOutstanding = false
        var offset = 0
        while offset < input.count, phase == .open, decoder != nil {
            let step: (consumed: Int, message: WebSocketMessage?)
            do {
                step = try decoder!.parse(UnsafeRawBufferPointer(rebasing: input[offset...]))
            } catch {
                fail(error)
                return
            }
            offset += step.consumed
            guard let message = step.message else {
                if step.consumed == 0 { return }
                continue
            }
            switch message {
            case .text, .binary:
                // After our close frame, data is no longer delivered (RFC 6455 §5.5.1).
                if !closeSent { service?.didReceive(message, on: self) }
            case .ping(let payload):
                if !closeSent { enqueuePong(.webSocketFrame(.pong, payload)) }
            case .pong:
                break
            case .close(let code, let reason):
                receivedClose(code, reason: reason)
            }
        }
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
        guard decoder != nil, !closeSent else { return }
        enqueue(frame)
    }

    /// Starts the closing handshake: our close frame now, the TCP close when the peer answers
    /// (or after `closeTimeout`).
    public func close(code: CloseCode, reason: String = "") {
        guard phase == .open, decoder != nil, !closeSent else { return }
        closeSent = true
        enqueue(.webSocketFrame(.close, FrameEncoder.closePayload(code: code, reason: reason)))
        loop.schedule(self, afterSeconds: config.closeTimeout)
    }

    private func receivedClose(_ code: CloseCode?, reason: [UInt8]) {
        if !closeSent {
            closeSent = true
            // Echo the status code and reason, or an empty close when none was sent (RFC 6455 §5.5.1).
            let payload = code.map { FrameEncoder.closePayload(code: $0, reason: String(decoding: reason, as: UTF8.self)) } ?? []
            enqueue(.webSocketFrame(.close, payload))
        }
        notifyClosed(code)
        closeAfterFlush()
    }

    /// The peer broke the protocol: close with the error's code and stop reading its frames.
    private func fail(_ error: WebSocketError) {
        Log.debug("websocket protocol error \(error.closeCode.rawValue): \(error.reason)", conn: id)
        if !closeSent {
            closeSent = true
            enqueue(.webSocketFrame(.close, FrameEncoder.closePayload(code: error.closeCode, reason: error.reason)))
        }
        notifyClosed(error.closeCode)
        decoder = nil
        closeAfterFlush()
    }

    func notifyClosed(_ code: CloseCode?) {
        guard !closeNotified, let service else { return }
        closeNotified = true
        service.didClose(self, code: code)
    }

    /// Silence for `webSocketPingInterval` earns a ping; silence for `webSocketPongTimeout` after
    /// it drops the connection. Activity only stamps `lastActivity`: the deadline is corrected lazily here.
    func webSocketDeadlineReached() {
        if closeSent {
            closeNow()
            return
        }
        if pingOutstanding {
            Log.info("no answer to ping within \(config.webSocketPongTimeout) seconds", conn: id)
            if let (code, reason) = service?.closeReason(for: .pongTimeout, on: self) {
                close(code: code, reason: reason)
            } else {
                closeNow()
            }
            return
        }
        let interval = EventLoop.ticks(pingInterval ?? config.webSocketPingInterval)
        let idle = loop.now &- lastActivity
        if idle >= interval {
            pingOutstanding = true
            enqueue(pingFrame ?? .webSocketFrame(.ping, []))
            loop.schedule(self, afterSeconds: config.webSocketPongTimeout)
        } else {
            loop.schedule(self, atTick: lastActivity &+ interval)
        }
    }
}
