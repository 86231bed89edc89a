/// The Pusher wire envelope, encoded by hand: it is built once per published event and shared by
/// every subscriber, and the key order (`event`, `channel`, `data`, `user_id`) stays stable so that
/// tests can compare bytes (PROTOCOL.md §1.2).
public enum PusherEvent {
    /// `data` is already a string (an application event's payload, or a JSON-encoded object for
    /// `pusher:`/`pusher_internal:` events): it is sent as a JSON string, never re-encoded.
    public static func encode(event: String, channel: String? = nil, data: String?, userID: String? = nil) -> [UInt8] {
        var json = "{\"event\":\"" + JSONString.escaped(event) + "\""
        if let channel { json += ",\"channel\":\"" + JSONString.escaped(channel) + "\"" }
        if let data { json += ",\"data\":\"" + JSONString.escaped(data) + "\"" }
        if let userID { json += ",\"user_id\":\"" + JSONString.escaped(userID) + "\"" }
        json += "}"
        return Array(json.utf8)
    }

    /// One shared WebSocket text frame holding the event, ready for `LoopGroup.send`.
    public static func frame(event: String, channel: String? = nil, data: String?, userID: String? = nil) -> OutboundBuffer {
        .webSocketFrame(.text, encode(event: event, channel: channel, data: data, userID: userID))
    }
}
