import Support

/// The Pusher wire envelope, encoded by hand: it is built once per published event and shared by
/// every subscriber, and the key order (`event`, `channel`, `data`, `user_id`) stays stable so that
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
        var out: [UInt8] = []
        out.reserveCapacity(48 + event.utf8.count + (channel?.utf8.count ?? 0) + (data.map(Self.estimatedCount) ?? 0))
        out.append(contentsOf: #"{"event":"#.utf8)
        appendString(event, to: &out)
        if let channel {
            out.append(contentsOf: #","channel":"#.utf8)
            appendString(channel, to: &out)
        }
        switch data {
        case nil: break
        case .string(let text):
            out.append(contentsOf: #","data":"#.utf8)
            appendString(text, to: &out)
        case .json(let raw):
            out.append(contentsOf: #","data":"#.utf8)
            out.append(contentsOf: raw)
        }
        if let userID {
            out.append(contentsOf: #","user_id":"#.utf8)
            appendString(userID, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
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

    private static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        out.append(contentsOf: JSONString.escaped(text).utf8)
        out.append(UInt8(ascii: "\""))
    }

    private static func estimatedCount(_ payload: Payload) -> Int {
        switch payload {
        case .string(let text): text.utf8.count + 8
        case .json(let raw): raw.count
        }
    }
}
