/// Where a Redis server is and how to log in: `redis://[[user]:password@]host[:port][/db]`,
/// or `rediss://…` (the same forms) for TLS.
///
/// - `user` and `password` are percent-decoded; `redis://:secret@host` sends `AUTH secret`,
///   `redis://alice:secret@host` sends `AUTH alice secret` (an ACL user, Redis 6+).
/// - `host` is a name, an IPv4 address, or an IPv6 address in brackets (`[::1]`).
/// - `port` defaults to 6379, `db` to 0; a db other than 0 is selected on every connect.
/// - A query (`?…`) or fragment (`#…`) is rejected rather than ignored: other clients read
///   settings such as `?password=` from it, and ignoring one would connect without it.
/// - `rediss://` connects with TLS and always verifies the server: its certificate must chain
///   to the system's CA store or `RedisOptions.tlsCAFile`, and name `host` (an IP address as an
///   IP address SAN). The port defaults to 6379 there too, as other Redis clients have it.
/// - `unix://` is not supported and rejected.
public struct RedisURL: Equatable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String?
    public var password: String?
    public var database: Int
    /// `rediss://`: TLS over the TCP connection.
    public var usesTLS: Bool

    public static let defaultPort = 6379

    public init(host: String, port: Int = RedisURL.defaultPort, user: String? = nil, password: String? = nil, database: Int = 0,
                usesTLS: Bool = false) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.usesTLS = usesTLS
    }

    public init(_ text: String) throws(RedisURLError) {
        var rest = Substring(text)
        guard let schemeEnd = rest.firstRange(of: "://") else { throw .missingScheme }
        let scheme = rest[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "redis" || scheme == "rediss" else { throw .unsupportedScheme(scheme) }
        usesTLS = scheme == "rediss"
        rest = rest[schemeEnd.upperBound...]
        if rest.contains("?") { throw .queryNotSupported }
        if rest.contains("#") { throw .fragmentNotSupported }

        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        let path = rest[authorityEnd...]

        if let at = authority.lastIndex(of: "@") {
            (user, password) = try Self.credentials(authority[..<at])
            authority = authority[authority.index(after: at)...]
        }
        (host, port) = try Self.hostAndPort(authority)
        database = try Self.database(path)
    }

    /// The URL with the password masked, for logs.
    public var description: String {
        var text = usesTLS ? "rediss://" : "redis://"
        if password != nil { text += (user.map(Self.percentEncoded) ?? "") + ":***@" }
        text += host.contains(":") ? "[\(host)]" : host
        text += ":\(port)/\(database)"
        return text
    }

    private static func credentials(_ userInfo: Substring) throws(RedisURLError) -> (String?, String?) {
        guard let colon = userInfo.firstIndex(of: ":") else { throw .userWithoutPassword }
        let user = try percentDecoded(userInfo[..<colon])
        let password = try percentDecoded(userInfo[userInfo.index(after: colon)...])
        if password.isEmpty {
            // "redis://:@host" is "no credentials"; a user with an empty password cannot log in.
            guard user.isEmpty else { throw .userWithoutPassword }
            return (nil, nil)
        }
        return (user.isEmpty ? nil : user, password)
    }

    private static func hostAndPort(_ authority: Substring) throws(RedisURLError) -> (String, Int) {
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw .invalidHost(String(authority)) }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .invalidHost(String(authority)) }
                portText = after.dropFirst()
            }
            guard !host.isEmpty, host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                throw .invalidHost(String(authority))
            }
        } else {
            if let colon = authority.firstIndex(of: ":") {
                host = authority[..<colon]
                portText = authority[authority.index(after: colon)...]
            } else {
                host = authority
            }
            guard !host.isEmpty else { throw .missingHost }
            guard host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._".contains($0)) }) else {
                throw .invalidHost(String(host))
            }
        }
        guard let portText else { return (String(host), defaultPort) }
        guard let port = Int(portText), portText.allSatisfy(\.isASCII), portText.first != "+",
              (1...65535).contains(port) else {
            throw .invalidPort(String(portText))
        }
        return (String(host), port)
    }

    private static func database(_ path: Substring) throws(RedisURLError) -> Int {
        let digits = path.dropFirst()
        if digits.isEmpty { return 0 }
        guard digits.count <= 9, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let database = Int(digits) else {
            throw .invalidDatabase(String(digits))
        }
        return database
    }

    private static func percentDecoded(_ text: Substring) throws(RedisURLError) -> String {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else { bytes.append(byte); continue }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                throw .invalidPercentEncoding
            }
            bytes.append(high << 4 | low)
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else { throw .invalidPercentEncoding }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func percentEncoded(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            let scalar = Unicode.Scalar(byte)
            if byte < 128 && (Character(scalar).isLetter || Character(scalar).isNumber || "-._~".unicodeScalars.contains(scalar)) {
                result.unicodeScalars.append(scalar)
            } else {
                result += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return result
    }
}

public enum RedisURLError: Error, Equatable, Sendable, CustomStringConvertible {
    case missingScheme
    case unsupportedScheme(String)
    case queryNotSupported
    case fragmentNotSupported
    case userWithoutPassword
    case invalidPercentEncoding
    case missingHost
    case invalidHost(String)
    case invalidPort(String)
    case invalidDatabase(String)

    public var description: String {
        switch self {
        case .missingScheme: "Redis URL must start with redis:// or rediss://"
        case .unsupportedScheme(let scheme): "Redis URL scheme \"\(scheme)\" is not supported (only redis:// and rediss://; no unix sockets)"
        case .queryNotSupported: "Redis URL query (?…) is not supported; put the password before the host and the db in the path"
        case .fragmentNotSupported: "Redis URL fragment (#…) is not supported"
        case .userWithoutPassword: "Redis URL names a user without a password; use redis://user:password@host"
        case .invalidPercentEncoding: "Redis URL user or password has a bad percent escape (or is not UTF-8)"
        case .missingHost: "Redis URL has no host"
        case .invalidHost(let host): "Redis URL host \"\(host)\" is not a host name, IPv4 address or [IPv6] address"
        case .invalidPort(let port): "Redis URL port \"\(port)\" is not a number from 1 to 65535"
        case .invalidDatabase(let db): "Redis URL database \"\(db)\" is not a non-negative number"
        }
    }
}
