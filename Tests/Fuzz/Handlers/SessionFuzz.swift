// Target `session`: Pusher client messages (PROTOCOL.md §1.6–§1.11) into two PusherSessions of
// one app, over the real transport (WebSocket upgrade, frame decoder, PusherService, hub,
// fan-out between the two). The input is
//
//   <modes byte><line>\n<line>\n…        (at most 64 lines)
//
// modes: bit 0 / bit 1  socket 0 / 1 connects in seed mode (with the organization's JWT).
// Each line is <control byte><message>; control:
//   bit 0  which socket sends it;
//   bit 1  sign it: for pusher:subscribe, data.auth becomes the correct HMAC of socket id,
//          channel (and channel_data); for pusher:signin, of socket id and user_data. Otherwise
//          any auth the message carries goes as is;
//   bit 2  send it as a binary frame rather than text;
//   bit 3  after it, drop that socket (its session ends: members leave, users go offline) and
//          connect a new one in its place, in seed mode when bit 4 is set.
// A socket may only hear of channels it asked to subscribe to. At the end both sockets close,
// and the app's hub must be empty again.

enum SessionFuzz {
    static let maxLines = 64

    static func run(_ input: ArraySlice<UInt8>) {
        guard let modes = input.first else { return }
        let lines = Array(fuzzLines(input.dropFirst(), limit: maxLines).prefix(maxLines))
        FuzzBroker.shared.run { broker in
            let app = broker.liveApp
            var sockets = [broker.openPusherSocket(seed: modes & 1 != 0), broker.openPusherSocket(seed: modes & 2 != 0)]
            // Per socket: every channel it asked to subscribe to.
            var asked: [Set<String>] = [[], []]
            for line in lines {
                guard let control = line.first else { continue }
                let index = Int(control & 1)
                let socket = sockets[index]
                var message = Array(line.dropFirst())
                if control & 2 != 0, let session = broker.session(of: socket) {
                    message = signed(message, session: session, app: broker.app)
                }
                if let channel = subscribeChannel(message) { asked[index].insert(channel) }
                socket.send(FuzzConnection.clientFrame(message, opcode: control & 4 == 0 ? 0x1 : 0x2))
                sockets[1 - index].collect()
                if control & 8 != 0 {
                    socket.close()
                    checkChannels(of: socket, asked: asked[index])
                    asked[index] = []
                    sockets[index] = broker.openPusherSocket(seed: control & 16 != 0)
                }
            }
            for (index, socket) in sockets.enumerated() {
                socket.close()
                fuzzReport("socket \(index)", socket.received)
                checkChannels(of: socket, asked: asked[index])
            }
            broker.checkNothingLeft(in: app)
        }
    }

    /// The channel a `pusher:subscribe` names, read the way the session reads it.
    static func subscribeChannel(_ message: [UInt8]) -> String? {
        guard let object = (try? JSONParser.parse(message))?.objectValue,
              object["event"]?.stringValue == "pusher:subscribe" else { return nil }
        switch object["data"] {
        case .object(let data): return data["channel"]?.stringValue
        case .string(let text): return (try? JSONParser.parse(text))?.objectValue?["channel"]?.stringValue
        default: return nil
        }
    }

    /// A socket hears only of channels it asked for: no event of another channel reaches it.
    static func checkChannels(of socket: FuzzConnection, asked: Set<String>) {
        for message in socket.serverMessages {
            guard let channel = (try? JSONParser.parse(message))?.objectValue?["channel"]?.stringValue else { continue }
            fuzzCheck(asked.contains(channel), "a socket got an event of channel \(channel), which it never asked for")
        }
    }

    /// The message with a correct `auth` when it is a subscribe or a signin it can sign; else unchanged.
    static func signed(_ message: [UInt8], session: PusherSession, app: AppConfig) -> [UInt8] {
        guard let object = (try? JSONParser.parse(message))?.objectValue,
              let event = object["event"]?.stringValue else { return message }
        var dataObject: JSONObject
        switch object["data"] {
        case .object(let data): dataObject = data
        case .string(let text):
            guard let data = (try? JSONParser.parse(text))?.objectValue else { return message }
            dataObject = data
        default: return message
        }
        let toSign: String
        switch event {
        case "pusher:subscribe":
            guard let channel = dataObject["channel"]?.stringValue else { return message }
            toSign = ChannelAuth.stringToSign(socketID: session.socketID, channel: channel,
                                              channelData: dataObject["channel_data"]?.stringValue)
        case "pusher:signin":
            guard let userData = dataObject["user_data"]?.stringValue else { return message }
            toSign = ChannelAuth.signinStringToSign(socketID: session.socketID, userData: userData)
        default:
            return message
        }
        let auth = JSONObject.Member("auth", .string(app.key + ":" + fuzzSignature(secret: app.secret, toSign)))
        dataObject.members = dataObject.members.filter { $0.key != "auth" } + [auth]
        var members = object.members.filter { $0.key != "data" }
        members.append(.init("data", .object(dataObject)))
        return Array(JSON.object(JSONObject(members: members)).serialized.utf8)
    }

    /// A correctly signed `pusher:subscribe`.
    static func subscribe(_ channel: String, channelData: String?, session: PusherSession, app: AppConfig) -> [UInt8] {
        var data: [JSONObject.Member] = [.init("channel", .string(channel))]
        if let channelData { data.append(.init("channel_data", .string(channelData))) }
        let message = JSON.object(JSONObject(members: [.init("event", .string("pusher:subscribe")),
                                                       .init("data", .object(JSONObject(members: data)))]))
        return signed(Array(message.serialized.utf8), session: session, app: app)
    }

    /// A correctly signed `pusher:signin`.
    static func signin(userData: String, session: PusherSession, app: AppConfig) -> [UInt8] {
        let data = JSONObject(members: [.init("user_data", .string(userData))])
        let message = JSON.object(JSONObject(members: [.init("event", .string("pusher:signin")), .init("data", .object(data))]))
        return signed(Array(message.serialized.utf8), session: session, app: app)
    }
}

extension FuzzBroker {
    /// A connection upgraded to a Pusher WebSocket on the fuzzed app (its session in
    /// the app's hub), in seed mode with the organization's JWT when `seed` is set.
    func openPusherSocket(seed: Bool) -> FuzzConnection {
        let socket = connect()
        var target = "/app/\(app.key)?protocol=7&client=fuzz&version=1.0"
        if seed { target += "&jwt=\(jwt)&user_id=seed-user" }
        let request = "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        socket.send(Array(request.utf8))
        fuzzCheck(session(of: socket) != nil, "the Pusher upgrade was refused")
        return socket
    }
}
