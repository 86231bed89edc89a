import Glibc

// Target `api`: one Pusher HTTP API request (PROTOCOL.md §1.15) through the whole server path:
// HTTP parser, router, APISignature, the events/batch/channels/users/terminate handlers, the hub,
// the response. The input is
//
//   <flags byte><METHOD>\n<target: path?query>\n<body (the rest, newlines included)>
//
// flags: bit 0  sign the request with the app's secret (auth_key, auth_timestamp, auth_version
//               and auth_signature appended to the query, computed from the fuzzed request);
//        bit 1  add a correct body_md5 to a signed request;
//        bit 2  sign with a timestamp 700 s in the past (bit 3: in the future) instead of now;
//        bit 4  before the request, open a Pusher socket that signs in as user "u1" and subscribes
//               to a public, a presence, a cache and a private channel, so that publishing fans
//               out and the queries find something;
//        bit 5  send the request twice on one keep-alive connection.
// A request to the app that the harness signed for now (with body_md5 when it has a body), whose
// fuzzed query has no auth_ or body_md5 parameter of its own, must never be answered 401; no request may be answered 500, and every request gets
// exactly one answer.

enum APIFuzz {
    static let subscribedChannels = ["my-channel", "presence-room", "cache-news", "private-secret"]

    static func run(_ input: ArraySlice<UInt8>) {
        guard let flags = input.first else { return }
        let parts = fuzzLines(input.dropFirst(), limit: 3)
        guard parts.count >= 2 else { return }
        let method = String(decoding: parts[0], as: UTF8.self)
        var target = String(decoding: parts[1], as: UTF8.self)
        let body = parts.count > 2 ? Array(parts[2]) : []
        // The request line cannot carry these; the HTTP fuzzer covers such heads.
        guard !method.isEmpty, !method.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F }),
              target.hasPrefix("/"), !target.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F }) else { return }

        var mustAuthenticate = false
        if flags & 1 != 0 {
            let skew = flags & 4 == 0 ? 0 : (flags & 8 == 0 ? -700 : 700)
            guard let signed = sign(method: method, target: target, body: body, withMD5: flags & 2 != 0,
                                    timestamp: time(nil) + skew) else { return }
            target = signed.target
            // A body needs its body_md5.
            mustAuthenticate = skew == 0 && !signed.queryHadAuth && signed.addressesTheApp && (body.isEmpty || flags & 2 != 0)
        }
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n"
        let request = Array(head.utf8) + body
        let times = flags & 32 == 0 ? 1 : 2

        FuzzBroker.shared.run { broker in
            let app = broker.liveApp
            var subscriber: FuzzConnection?
            if flags & 16 != 0 {
                let socket = broker.openPusherSocket(seed: false)
                if let session = broker.session(of: socket) {
                    socket.send(FuzzConnection.clientFrame(SessionFuzz.signin(userData: #"{"id":"u1"}"#, session: session,
                                                                              app: broker.app)))
                    for channel in subscribedChannels {
                        let data = channel.hasPrefix("presence-") ? #"{"user_id":"u1","user_info":{"name":"Ann"}}"# : nil
                        socket.send(FuzzConnection.clientFrame(SessionFuzz.subscribe(channel, channelData: data,
                                                                                     session: session, app: broker.app)))
                    }
                }
                subscriber = socket
            }
            let client = broker.connect()
            client.send(Array(repeating: request, count: times).flatMap { $0 })
            subscriber?.collect()
            let statuses = responseStatuses(client.received, headOnly: method == "HEAD")
            fuzzReport("request", request)
            fuzzReport("answers \(statuses)", client.received)
            if let subscriber { fuzzReport("subscriber", subscriber.received) }
            fuzzCheck(!statuses.contains(500), "a request was answered 500")
            if mustAuthenticate {
                fuzzCheck(!statuses.contains(401), "a correctly signed request was refused: \(statuses)")
            }
            if !statuses.contains(where: { $0 == 400 || $0 == 413 || $0 == 431 || $0 == 414 }) {
                // A request the parser took whole gets one answer each (the parser's own errors close the stream).
                fuzzCheck(statuses.count == times || !client.connection.isOpen,
                             "\(times) requests, \(statuses.count) answers")
            }
            client.close()
            subscriber?.close()
            broker.checkNothingLeft(in: app)
        }
    }

    /// The fuzzed target with the auth parameters appended, signed the way a server library signs.
    static func sign(method: String, target: String, body: [UInt8], withMD5: Bool,
                     timestamp: Int) -> (target: String, queryHadAuth: Bool, addressesTheApp: Bool)? {
        let config = FuzzBroker.shared.app
        var extra = "auth_key=\(config.key)&auth_timestamp=\(timestamp)&auth_version=1.0"
        if withMD5 { extra += "&body_md5=" + Digest.hex(Digest.md5(body)) }
        let joined: String
        if let question = target.firstIndex(of: "?") {
            let query = target[target.index(after: question)...]
            joined = target + (query.isEmpty || query.hasSuffix("&") ? "" : "&") + extra
        } else {
            joined = target + "?" + extra
        }
        // The path and query as the server's parser will see them.
        guard let parsed = Array(joined.utf8).withUnsafeBytes({ splitTarget($0, method: method) }) else { return nil }
        let fuzzedNames = parsed.query.dropLast(withMD5 ? 4 : 3).map(\.name)
        let hadAuth = fuzzedNames.contains { $0.hasPrefix("auth_") || $0 == "body_md5" }
        let toSign = APISignature.stringToSign(method: method, path: parsed.path, query: parsed.query)
        // `/apps/1/…` (however encoded) or `/users/…`, which names the app by auth_key.
        let segments = parsed.path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst()
            .map { HTTPRequestParser.percentDecoded($0, plusAsSpace: false) }
        let addressesTheApp = segments.first == "users" || (segments.first == "apps" && segments.dropFirst().first == config.id)
        return (joined + "&auth_signature=" + fuzzSignature(secret: config.secret, toSign), hadAuth, addressesTheApp)
    }

    /// The path and decoded query the server's parser makes of `target`; nil when it refuses it.
    private static func splitTarget(_ target: UnsafeRawBufferPointer, method: String) -> (path: String, query: [(name: String, value: String)])? {
        do {
            let (path, query) = try HTTPRequestParser.splitTarget(target, method: method)
            return (path, query)
        } catch {
            return nil
        }
    }

    /// The status of every HTTP response in `bytes`, read one after the other by their
    /// Content-Length (answers to HEAD carry none).
    static func responseStatuses(_ bytes: [UInt8], headOnly: Bool) -> [Int] {
        var statuses: [Int] = []
        var offset = 0
        let prefix = Array("HTTP/1.1 ".utf8)
        let end: [UInt8] = [13, 10, 13, 10]
        while offset + prefix.count + 3 <= bytes.count, bytes[offset..<offset + prefix.count].elementsEqual(prefix) {
            let code = String(decoding: bytes[offset + prefix.count..<offset + prefix.count + 3], as: UTF8.self)
            guard let status = Int(code),
                  let headEnd = (offset..<bytes.count).first(where: { bytes[$0...].starts(with: end) }) else { break }
            statuses.append(status)
            let head = String(decoding: bytes[offset..<headEnd], as: UTF8.self).lowercased()
            let length = head.split(separator: "\r\n").lazy
                .compactMap { $0.hasPrefix("content-length: ") ? Int($0.dropFirst(16)) : nil }.first ?? 0
            offset = headEnd + 4 + (headOnly || status < 200 ? 0 : length)
        }
        return statuses
    }
}
