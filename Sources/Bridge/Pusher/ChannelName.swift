/// A validated channel name and the kind its prefix gives it (PROTOCOL.md §1.5).
public struct ChannelName: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        case `public`
        case `private`
        case presence
        case encrypted
        /// `#server-to-user-{id}`: only the signed-in user `id` may subscribe.
        case serverToUser(userID: String)
    }

    public let name: String
    public let kind: Kind
    /// `cache-` channels (and their private/presence/encrypted forms) keep the last event.
    public let isCache: Bool

    /// Pusher's documented limit for names clients subscribe to.
    public static let defaultMaxLength = 164

    /// Nil when the name is empty, too long, or has a character outside `[A-Za-z0-9_\-=@,.;]`
    /// (`#` only in the reserved `#server-to-user-` prefix).
    public init?(_ name: String, maxLength: Int = ChannelName.defaultMaxLength) {
        guard !name.isEmpty, name.utf8.count <= maxLength else { return nil }
        self.name = name
        let serverToUser = "#server-to-user-"
        if name.hasPrefix(serverToUser) {
            let userID = String(name.dropFirst(serverToUser.count))
            guard !userID.isEmpty, userID.utf8.allSatisfy(Self.isAllowed) else { return nil }
            kind = .serverToUser(userID: userID)
            isCache = false
            return
        }
        guard name.utf8.allSatisfy(Self.isAllowed) else { return nil }
        let match = Self.prefixes.first { name.hasPrefix($0.prefix) }
        kind = match?.kind ?? .public
        isCache = match?.isCache ?? false
    }

    /// The most specific prefix first, always with its hyphen (`my-cache-x` is public).
    private static let prefixes: [(prefix: String, kind: Kind, isCache: Bool)] = [
        ("private-encrypted-cache-", .encrypted, true),
        ("private-encrypted-", .encrypted, false),
        ("private-cache-", .private, true),
        ("presence-cache-", .presence, true),
        ("presence-", .presence, false),
        ("private-", .private, false),
        ("cache-", .public, true),
    ]

    /// Private, presence and encrypted channels need an auth signature to subscribe.
    public var requiresAuth: Bool {
        switch kind {
        case .private, .presence, .encrypted: true
        case .public, .serverToUser: false
        }
    }

    /// Client events are allowed on private and presence channels only (not encrypted ones:
    /// the server could not encrypt them).
    public var allowsClientEvents: Bool {
        kind == .private || kind == .presence
    }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "="), UInt8(ascii: "@"), UInt8(ascii: ","), UInt8(ascii: "."), UInt8(ascii: ";"):
            true
        default:
            false
        }
    }
}
