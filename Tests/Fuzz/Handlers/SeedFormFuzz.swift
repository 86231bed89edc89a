// Target `seedform`: the seed API's requests through the whole server path: form and JSON body
// parsing (`HTTPRequest.formFields`, `SeedAPI.fields(of:)`), the JWT check and the event handler
// publishing to a subscriber. The input is
//
//   <flags byte><event name, raw in the path>\n<bearer token>\n<body (the rest)>
//
// flags: bit 0  Content-Type application/json (else application/x-www-form-urlencoded);
//        bit 1  send the organization's valid JWT (else the fuzzed bearer token line);
//        bit 2  POST /api/sessions (trading a token for a JWT) instead of the event endpoint;
//               bit 1 then sends the organization's real secret token as token=…;
//        bit 3  address the other tenant's app (no organization owns it): must be 404;
//        bit 4  a Pusher socket subscribed to the default channel `general` listens.
// Every request gets one answer, never 500; an event published with the valid JWT to the
// organization's app reaches the listening socket.

enum SeedFormFuzz {
    static func run(_ input: ArraySlice<UInt8>) {
        guard let flags = input.first else { return }
        let parts = fuzzLines(input.dropFirst(), limit: 3)
        guard parts.count >= 2 else { return }
        let event = String(decoding: parts[0], as: UTF8.self)
        let token = String(decoding: parts[1], as: UTF8.self)
        var body = parts.count > 2 ? Array(parts[2]) : []
        guard !event.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F || $0 == UInt8(ascii: "?") }),
              !token.utf8.contains(where: { $0 < 0x20 || $0 >= 0x7F }) else { return }
        let broker = FuzzBroker.shared
        let json = flags & 1 != 0
        let validJWT = flags & 2 != 0
        let target: String
        var headers = "Content-Type: " + (json ? "application/json" : "application/x-www-form-urlencoded") + "\r\n"
        if flags & 4 != 0 {
            target = "/api/sessions"
            if validJWT { body = Array("token=\(broker.secretToken)".utf8) }
        } else {
            let key = flags & 8 == 0 ? broker.app.key : broker.otherApp.key
            target = "/api/organizations/\(broker.organization)/applications/\(key)/event/\(event)"
            headers += "Authorization: Bearer \(validJWT ? broker.jwt : token)\r\n"
        }
        let request = Array("POST \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(headers)Content-Length: \(body.count)\r\n\r\n".utf8) + body

        broker.run { broker in
            let app = broker.liveApp
            var listener: FuzzConnection?
            if flags & 16 != 0 {
                let socket = broker.openPusherSocket(seed: false)
                if let session = broker.session(of: socket) {
                    socket.send(FuzzConnection.clientFrame(SessionFuzz.subscribe(broker.app.defaultChannel, channelData: nil,
                                                                                 session: session, app: broker.app)))
                }
                listener = socket
            }
            let heardBefore = listener?.received.count ?? 0
            let client = broker.connect()
            client.send(request)
            let statuses = APIFuzz.responseStatuses(client.received, headOnly: false)
            fuzzReport("request", request)
            fuzzReport("answers \(statuses)", client.received)
            fuzzCheck(!statuses.contains(500), "a seed API request was answered 500")
            fuzzCheck(statuses.count == 1, "one request, \(statuses.count) answers")
            if flags & 12 == 8 && validJWT {
                fuzzCheck(statuses == [404], "the other tenant's app was reachable with this organization's JWT: \(statuses)")
            }
            if let listener, statuses == [200], flags & 12 == 0 {
                listener.collect()
                fuzzCheck(listener.received.count > heardBefore || !publishesToDefault(body, json: json),
                             "an accepted event did not reach the subscriber of the default channel")
            }
            client.close()
            listener?.close()
            if let listener { fuzzReport("listener", listener.received) }
            broker.checkNothingLeft(in: app)
        }
    }

    /// Whether an accepted body publishes to the default channel (it names no other one).
    private static func publishesToDefault(_ body: [UInt8], json: Bool) -> Bool {
        let request = HTTPRequest(method: "POST", target: "/", path: "/", body: body)
        if json {
            guard let object = (try? JSONParser.parse(body))?.objectValue else { return false }
            return object.members.allSatisfy { $0.key != "channel" }
        }
        return (request.formFields ?? []).allSatisfy { $0.name != "channel" }
    }
}
