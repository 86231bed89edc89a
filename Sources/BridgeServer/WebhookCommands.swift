import Bridge
import Foundation
import Webhooks

/// `bridge webhooks verify` and `bridge webhooks status`: the operator's tools (replay is in Replay.swift).
enum WebhookCommands {
    static let usage = """
        usage:
          bridge webhooks replay [serve options]   send the dead-lettered webhooks again
          bridge webhooks status [serve options]   backlog of the server running with these options
          bridge webhooks verify --secret S --signature SIG [--key K --received-key K2] < body
                                                   check a webhook as a receiver would (exit 0 if valid)
        """

    /// Reads the body from stdin and checks it; prints `valid` or why not.
    static func verify(_ arguments: [String]) -> Int32 {
        var values: [String: String] = [:]
        var index = 0
        while index < arguments.count {
            let name = arguments[index]
            guard ["--secret", "--signature", "--key", "--received-key"].contains(name), index + 1 < arguments.count else {
                CLI.fail("webhooks verify: unexpected argument \"\(name)\"\n\(usage)")
            }
            values[String(name.dropFirst(2))] = arguments[index + 1]
            index += 2
        }
        guard let secret = values["secret"], let signature = values["signature"] else {
            CLI.fail("webhooks verify needs --secret and --signature\n\(usage)")
        }
        let body = Array(FileHandle.standardInput.readDataToEndOfFile())
        if let failure = WebhookVerification.check(body: body, signature: signature, secret: secret,
                                                   key: values["key"], receivedKey: values["received-key"]) {
            print("invalid: \(failure)")
            return 1
        }
        print("valid")
        return 0
    }

    /// Asks the running server (`GET /webhooks/status` on its port) and prints the answer. The
    /// endpoint wants the admin token or an app's key:secret: the first one the same options
    /// (flags, environment, config file) give, the admin token first.
    static func status(_ settings: ServeSettings) -> Int32 {
        let host = settings.server.host == "0.0.0.0" ? "127.0.0.1" : settings.server.host
        let credential = settings.seed.adminToken ?? settings.apps.first.map { "\($0.key):\($0.secret)" } ?? ""
        guard let answer = LocalHTTP.get(host: host, port: settings.server.port, path: "/webhooks/status",
                                         headers: ["Authorization: Bearer \(credential)"]) else {
            print("bridge: no server answering on \(host):\(settings.server.port)")
            return 1
        }
        guard answer.status == 200 else {
            let why = answer.status == 401
                ? "the server refused the credential: give the same --admin-token or --config (apps) as the server"
                : "the server answered HTTP \(answer.status)"
            print("bridge: \(why): \(answer.body)")
            return 1
        }
        print(answer.body)
        return 0
    }
}

/// A blocking HTTP/1.1 GET over loopback, enough for the status command.
enum LocalHTTP {
    /// Nil when no server answered with an HTTP response.
    static func get(host: String, port: Int, path: String, headers: [String] = []) -> (status: Int, body: String)? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { return nil }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        let head = (["GET \(path) HTTP/1.1", "Host: \(host)", "Connection: close"] + headers).joined(separator: "\r\n")
        let request = Array((head + "\r\n\r\n").utf8)
        guard send(fd, request, request.count, 0) == request.count else { return nil }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            response.append(contentsOf: buffer[0..<n])
        }
        let text = String(decoding: response, as: UTF8.self)
        guard text.hasPrefix("HTTP/1.1 "), let status = Int(text.dropFirst(9).prefix(3)),
              let split = text.range(of: "\r\n\r\n") else { return nil }
        return (status, String(text[split.upperBound...]))
    }
}
