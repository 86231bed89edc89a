import Support

/// The Pusher wire envelope: written once per published event into one buffer shared by every
/// subscriber, and the key order (`event`, `channel`, `data`, `user_id`) stays stable so that
/// tests can compare bytes (PROTOCOL.md §1.2).
public enum PusherEvent {
    /// How `data` goes on the wire.
    public enum Payload: Sendable {
        /// A string, JSON-escaped here: the JSON-encoded object of a `pusher:`/`pusher_internal:` event.
        case string(String)
        /// JSON text exactly as a publisher or client sent it (a string token or an object), passed
        /// through byte for byte and never re-encoded.
        case json(ArraySlice<UInt8>)
    }

    public static func encode(event: String, channel: String? = nil, data: Payload?, userID: String? = nil) -> [UInt8] {
        var json = JSONWriter(reservingCapacity: 48 + event.utf8.count + (channel?.utf8.count ?? 0) + (data.map(Self.estimatedCount) ?? 0))
        json.object {
            $0.field("event", event)
            if let channel { $0.field("channel", channel) }
            switch data {
            case nil: break
            case .string(let text): $0.field("data", text)
            case .json(let raw): $0.rawField("data", raw)
            }
            if let userID { $0.field("user_id", userID) }
        }
        return json.bytes
    }

    /// `data` given as a string (the usual case for events the server makes up).
    public static func encode(event: String, channel: String? = nil, data: String?, userID: String? = nil) -> [UInt8] {
        encode(event: event, channel: channel, data: data.map(Payload.string), userID: userID)
    }

    /// One shared WebSocket text frame holding the event, ready for `LoopGroup.send`.
    public static func frame(event: String, channel: String? = nil, data: Payload?, userID: String? = nil) -> OutboundBuffer {
        .webSocketFrame(.text, encode(event: event, channel: channel, data: data, userID: userID))
    }

    public static func frame(event: String, channel: String? = nil, data: String?, userID: String? = nil) -> OutboundBuffer {
        frame(event: event, channel: channel, data: data.map(Payload.string), userID: userID)
    }

    private static func estimatedCount(_ payload: Payload) -> Int {
        switch payload {
        case .string(let text): text.utf8.count + 8
        case .json(let raw): raw.count
        }
    }
}
