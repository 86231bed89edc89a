extension PusherSession {
    /// A `client-` event (Pusher's rules), or in seed mode any other event the page triggers on
    /// a channel it joined: those may go to any channel kind and reach the sender too, as the
    /// seed service's broadcasts did.
    func clientEvent(_ event: String, _ message: JSONObject, _ bytes: [UInt8]) {
        let isSeedEvent = !event.hasPrefix("client-")
        let config = app.config
        let subscription = message["channel"]?.stringValue.flatMap { subscriptions[$0] }
        if let refusal = ClientEventRefusal.check(event: event, message: message, subscription: subscription, config: config,
                                                  seedEvent: isSeedEvent) {
            return report(refusal.error)
        }
        guard let subscription, let data = message.member("data") else { return }
        guard takeClientEventToken(limit: config.maxClientEventsPerSecond) else {
            return report(ClientEventRefusal.rateLimited(perSecond: config.maxClientEventsPerSecond).error)
        }
        let name = subscription.channel.name
        let rawData = bytes[data.raw]
        let webhook = ChannelEvent.clientEvent(channel: name, event: event, data: String(decoding: rawData, as: UTF8.self),
                                               socketID: socketID, userID: subscription.memberID)
        guard hub.emit(webhook) else { return report(ClientEventRefusal.backlogFull.error) }
        // user_id comes from the authorized presence data, never from the client's frame.
        let envelope = PusherEvent.encode(event: event, channel: name, data: .json(rawData), userID: subscription.memberID)
        hub.publishEverywhere(envelope, to: name, except: isSeedEvent ? nil : socketID)
    }

    private func takeClientEventToken(limit: Int) -> Bool {
        let second = Int(connection.loop.seconds)
        if clientEvents.second != second { clientEvents = (second, 0) }
        guard clientEvents.count < limit else { return false }
        clientEvents.count += 1
        return true
    }
}

/// Why a client event was not delivered; the sender gets a `pusher:error` and stays connected.
enum ClientEventRefusal: Equatable {
    case disabled
    case noChannel
    case notSubscribed(String)
    case encryptedChannel
    case channelKind
    case nameTooLong(limit: Int)
    case noData
    case dataTooLarge(limit: Int)
    case rateLimited(perSecond: Int)
    case backlogFull

    /// The checks that need nothing but the message, the sender's subscription to its channel and
    /// the app's settings; nil when the event may go on to the rate limit.
    static func check(event: String, message: JSONObject, subscription: PusherSession.Subscription?, config: AppConfig,
                      seedEvent: Bool) -> ClientEventRefusal? {
        guard config.enableClientMessages else { return .disabled }
        guard let name = message["channel"]?.stringValue else { return .noChannel }
        guard let subscription else { return .notSubscribed(name) }
        // Nothing but the backend's own ciphertext may reach an encrypted channel, in seed mode too.
        guard subscription.channel.kind != .encrypted else { return .encryptedChannel }
        guard seedEvent || subscription.channel.allowsClientEvents else { return .channelKind }
        guard event.utf8.count <= config.maxEventNameLength else { return .nameTooLong(limit: config.maxEventNameLength) }
        guard let data = message.member("data") else { return .noData }
        guard data.raw.count <= config.maxEventPayloadBytes else { return .dataTooLarge(limit: config.maxEventPayloadBytes) }
        return nil
    }

    var error: PusherError {
        switch self {
        case .disabled: .clientEventRejected("Client events are disabled for this app")
        case .noChannel: .clientEventRejected("A client event needs a channel")
        case .notSubscribed(let name): .unauthorized("Client event rejected: not subscribed to \(name)")
        case .encryptedChannel: .clientEventRejected("Client events are not allowed on encrypted channels")
        case .channelKind: .clientEventRejected("Client events are allowed only on private and presence channels")
        case .nameTooLong(let limit): .clientEventRejected("Event name is longer than \(limit) characters")
        case .noData: .clientEventRejected("A client event needs data")
        case .dataTooLarge(let limit): .clientEventRejected("Client event data is larger than \(limit) bytes")
        case .rateLimited(let rate): .clientEventRejected("Client event rejected due to rate limit (\(rate) per second)")
        case .backlogFull: .clientEventRejected("Client event refused: the app's webhook backlog is full")
        }
    }
}

extension JSON {
    /// A number's text, so that numeric ids become the same strings the client would send.
    var numberText: String? {
        if case .number(let text) = self { return text }
        return nil
    }
}
