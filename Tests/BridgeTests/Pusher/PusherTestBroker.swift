@testable import Bridge
import Glibc
import Support
import Synchronization

/// An in-process broker on a loopback port (one event loop), with an observer that keeps every
/// channel event the hub emitted: the hub's and the session's rules tested through the real
/// protocol, without starting a process.
final class PusherTestBroker: Sendable {
    let port: Int
    let broker: Broker
    let events: ChannelEventLog
    let app: AppConfig

    init(_ configure: (inout AppConfig) -> Void = { _ in }) throws {
        var app = AppConfig(id: "1", key: "app-key", secret: "app-secret")
        configure(&app)
        self.app = app
        var config = ServerConfig()
        config.host = "127.0.0.1"
        config.port = 0
        config.threads = 1
        let server = Server(config: config)
        events = ChannelEventLog()
        broker = Broker(server: server, apps: [app], observer: events)
        port = try server.start()
        broker.start()
    }

    var hub: Hub {
        guard let live = broker.apps.app(id: app.id) else { preconditionFailure("the test app is missing") }
        return live.hub
    }

    func client() throws -> PusherTestClient {
        try PusherTestClient(port: port, key: app.key, secret: app.secret)
    }
}

/// Every channel event the hub emitted, in order.
final class ChannelEventLog: ChannelEventObserver {
    private let list = Mutex<[ChannelEvent]>([])

    func app(_ appID: String, emitted event: ChannelEvent) -> Bool {
        list.withLock { $0.append(event) }
        return true
    }

    /// The events so far, once `until` holds for them or 5 s have passed.
    func snapshot(until done: ([ChannelEvent]) -> Bool = { _ in true }) -> [ChannelEvent] {
        for _ in 0..<500 {
            let taken = list.withLock { $0 }
            if done(taken) { return taken }
            usleep(10_000)
        }
        return list.withLock { $0 }
    }
}

/// One Pusher client over a real WebSocket: sends JSON messages, reads frames as (event, channel, data).
final class PusherTestClient {
    struct Frame: Equatable {
        let event: String
        let channel: String?
        /// The `data` field's text (Pusher sends it as a JSON string), or "" when absent.
        let data: String
    }

    private let connection: TestClient
    private let auth: ChannelAuth
    private(set) var socketID = ""

    init(port: Int, key: String, secret: String) throws {
        connection = try TestClient(port: port)
        auth = ChannelAuth(appKey: key, secret: secret)
        let head = connection.upgrade(path: "/app/\(key)?protocol=7")
        guard head.hasPrefix("HTTP/1.1 101") else { throw TestClientError.failed("upgrade refused: \(head)") }
        let established = try next()
        guard established.event == "pusher:connection_established",
              let id = (try? JSONParser.parse(established.data))?.objectValue?["socket_id"]?.stringValue
        else { throw TestClientError.failed("no connection_established: \(established)") }
        socketID = id
    }

    func send(_ json: String) {
        connection.sendFrame(opcode: 1, Array(json.utf8))
    }

    /// Subscribes, signing private and presence channels (presence as `userID`).
    func subscribe(_ channel: String, userID: String? = nil) {
        var fields = #""channel":"\#(channel)""#
        if let userID {
            let channelData = #"{"user_id":"\#(userID)"}"#
            let signature = auth.signature(of: ChannelAuth.stringToSign(socketID: socketID, channel: channel, channelData: channelData))
            fields += #","auth":"\#(auth.appKey):\#(signature)","channel_data":"# + JSONWriter.quoted(channelData)
        } else if channel.hasPrefix("private-") {
            let signature = auth.signature(of: ChannelAuth.stringToSign(socketID: socketID, channel: channel))
            fields += #","auth":"\#(auth.appKey):\#(signature)""#
        }
        send(#"{"event":"pusher:subscribe","data":{"# + fields + "}}")
    }

    func unsubscribe(_ channel: String) {
        send(#"{"event":"pusher:unsubscribe","data":{"channel":"\#(channel)"}}"#)
    }

    /// The next text frame, parsed.
    func next() throws -> Frame {
        guard let (opcode, payload) = connection.readFrame() else { throw TestClientError.failed("no frame within 5 s") }
        guard opcode == 1, let object = (try? JSONParser.parse(payload))?.objectValue, let event = object["event"]?.stringValue
        else { throw TestClientError.failed("not a Pusher event: opcode \(opcode), \(String(decoding: payload, as: UTF8.self))") }
        return Frame(event: event, channel: object["channel"]?.stringValue, data: object["data"]?.stringValue ?? "")
    }

    /// Reads until `event` arrives; returns it with the frames read before it.
    func next(_ event: String) throws -> (frame: Frame, before: [Frame]) {
        var before: [Frame] = []
        while true {
            let frame = try next()
            if frame.event == event { return (frame, before) }
            before.append(frame)
        }
    }

    /// The frames that arrive before a `pusher:pong` to a ping sent now: what the server had
    /// queued for this client, proving by the pong that nothing else is on its way.
    func drain() throws -> [Frame] {
        send(#"{"event":"pusher:ping","data":{}}"#)
        return try next("pusher:pong").before
    }
}
