/// What the transport asks of a Pusher session: its messages, its end, its close codes and its
/// keep-alive (`pusher:ping` after the app's `activity_timeout`).
extension PusherSession: WebSocketSession {
    func received(_ message: WebSocketMessage) {
        switch message {
        // Binary frames are not part of the protocol; like soketi, read them as JSON text anyway.
        case .text(let bytes), .binary(let bytes): handle(bytes)
        default: break
        }
    }

    func closed(code: CloseCode?) {
        end()
    }

    func closeReason(for cause: TransportCloseCause) -> (CloseCode, String)? {
        let error = switch cause {
        case .shutdown: PusherError.reconnectNow("Server is shutting down, reconnect shortly")
        case .slowConsumer: PusherError.overCapacity("Over capacity: the client reads too slowly")
        case .pongTimeout: PusherError.pongNotReceived("Pong reply not received in time")
        }
        // A slow consumer would not read the frame anyway; everyone else gets it before the close.
        if cause != .slowConsumer { send(error.frame) }
        return (error.closeCode, error.message)
    }

    var pingInterval: Double? { Double(app.config.activityTimeout) }

    var pingFrame: OutboundBuffer? { PusherSession.pingFrame }
}
