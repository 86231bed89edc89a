/// What one broker node tells the others: events their subscribers must get too. Carries the
/// Pusher JSON envelope as encoded on the first node, so every node sends the same bytes.
public enum ClusterMessage: Sendable, Equatable {
    /// An event for a channel's subscribers (HTTP API, seed API, client events), except the
    /// connection `excluded`; on cache channels each node also keeps it for `cacheTTL` seconds.
    case channelEvent(appID: String, channel: String, envelope: [UInt8], excluded: String?, cacheTTL: Int?, dataString: String?)
    /// A `#server-to-user-{id}` event for every connection signed in as `userID`.
    case userEvent(appID: String, userID: String, envelope: [UInt8])
    /// `terminate_connections`: close every connection signed in as `userID`.
    case terminateUser(appID: String, userID: String)
    /// A presence member's first connection anywhere joined (`added`) or its last one left: a
    /// `pusher_internal:member_added`/`member_removed` for every subscriber of the channel but
    /// `excluded` and those whose member list (of version `version` or later) already has it.
    /// Sent by the shared state itself, in version order, to every node.
    case memberChange(appID: String, channel: String, userID: String, added: Bool, info: String?, excluded: String?, version: Int)
    /// For node `holder` only: a channel (or, with `userID`, a presence member) arrived again while
    /// `holder` holds its departure's webhook in the grace window; the pair cancels there.
    case heldArrival(appID: String, holder: String, channel: String, userID: String?)

    public var appID: String {
        switch self {
        case .channelEvent(let appID, _, _, _, _, _), .userEvent(let appID, _, _), .terminateUser(let appID, _),
             .heldArrival(let appID, _, _, _), .memberChange(let appID, _, _, _, _, _, _): appID
        }
    }

    // MARK: Wire format
    // One type byte, then length-prefixed fields (UInt32 little-endian length; 0xFFFFFFFF = absent).

    private enum Kind: UInt8 { case channelEvent = 1, userEvent = 2, terminateUser = 3, heldArrival = 4, memberChange = 5 }

    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        switch self {
        case let .channelEvent(appID, channel, envelope, excluded, cacheTTL, dataString):
            out.append(Kind.channelEvent.rawValue)
            for field in [Array(appID.utf8), Array(channel.utf8), envelope] { Self.append(field, to: &out) }
            for field in [excluded.map { Array($0.utf8) }, cacheTTL.map { Array(String($0).utf8) }, dataString.map { Array($0.utf8) }] {
                Self.append(field, to: &out)
            }
        case let .userEvent(appID, userID, envelope):
            out.append(Kind.userEvent.rawValue)
            for field in [Array(appID.utf8), Array(userID.utf8), envelope] { Self.append(field, to: &out) }
        case let .terminateUser(appID, userID):
            out.append(Kind.terminateUser.rawValue)
            for field in [Array(appID.utf8), Array(userID.utf8)] { Self.append(field, to: &out) }
        case let .memberChange(appID, channel, userID, added, info, excluded, version):
            out.append(Kind.memberChange.rawValue)
            for field in [Array(appID.utf8), Array(channel.utf8), Array(userID.utf8), Array((added ? "1" : "0").utf8),
                          info.map { Array($0.utf8) }, excluded.map { Array($0.utf8) }, Array(String(version).utf8)] {
                Self.append(field, to: &out)
            }
        case let .heldArrival(appID, holder, channel, userID):
            out.append(Kind.heldArrival.rawValue)
            for field in [Array(appID.utf8), Array(holder.utf8), Array(channel.utf8), userID.map { Array($0.utf8) }] {
                Self.append(field, to: &out)
            }
        }
        return out
    }

    /// Nil for bytes that are not a message this version writes (another version's, or damage).
    public init?(decoding bytes: [UInt8]) {
        var reader = FieldReader(bytes: bytes)
        guard let kind = reader.byte().flatMap(Kind.init(rawValue:)) else { return nil }
        switch kind {
        case .channelEvent:
            guard let app = reader.string(), let channel = reader.string(), case .some(.some(let envelope)) = reader.field(),
                  case .some(let excluded) = reader.optionalString(), case .some(let ttl) = reader.optionalString(),
                  case .some(let dataString) = reader.optionalString(), reader.atEnd else { return nil }
            let cacheTTL = ttl.flatMap { Int($0) }
            guard (ttl == nil) == (cacheTTL == nil) else { return nil }
            self = .channelEvent(appID: app, channel: channel, envelope: envelope, excluded: excluded, cacheTTL: cacheTTL,
                                 dataString: dataString)
        case .userEvent:
            guard let app = reader.string(), let user = reader.string(), case .some(.some(let envelope)) = reader.field(),
                  reader.atEnd else { return nil }
            self = .userEvent(appID: app, userID: user, envelope: envelope)
        case .terminateUser:
            guard let app = reader.string(), let user = reader.string(), reader.atEnd else { return nil }
            self = .terminateUser(appID: app, userID: user)
        case .memberChange:
            guard let app = reader.string(), let channel = reader.string(), let user = reader.string(),
                  let added = reader.string(), added == "1" || added == "0",
                  case .some(let info) = reader.optionalString(), case .some(let excluded) = reader.optionalString(),
                  let version = reader.string().flatMap({ Int($0) }), reader.atEnd else { return nil }
            self = .memberChange(appID: app, channel: channel, userID: user, added: added == "1", info: info,
                                 excluded: excluded, version: version)
        case .heldArrival:
            guard let app = reader.string(), let holder = reader.string(), let channel = reader.string(),
                  case .some(let user) = reader.optionalString(), reader.atEnd else { return nil }
            self = .heldArrival(appID: app, holder: holder, channel: channel, userID: user)
        }
    }

    private static let absent = UInt32.max

    private static func append(_ field: [UInt8]?, to out: inout [UInt8]) {
        let length = field.map { UInt32($0.count) } ?? absent
        withUnsafeBytes(of: length.littleEndian) { out.append(contentsOf: $0) }
        if let field { out.append(contentsOf: field) }
    }

    /// Reads fields front to back; every read fails (nil) past the end.
    private struct FieldReader {
        let bytes: [UInt8]
        var offset = 0

        var atEnd: Bool { offset == bytes.count }

        mutating func byte() -> UInt8? {
            guard offset < bytes.count else { return nil }
            offset += 1
            return bytes[offset - 1]
        }

        /// `.some(nil)` for an absent field, nil when the bytes run out.
        mutating func field() -> [UInt8]?? {
            guard bytes.count - offset >= 4 else { return nil }
            let length = bytes[offset..<offset + 4].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            offset += 4
            if length == ClusterMessage.absent { return .some(nil) }
            guard bytes.count - offset >= Int(length) else { return nil }
            defer { offset += Int(length) }
            return .some(Array(bytes[offset..<offset + Int(length)]))
        }

        mutating func string() -> String? {
            guard case .some(.some(let raw)) = field() else { return nil }
            return String(validating: raw, as: UTF8.self)
        }

        mutating func optionalString() -> String?? {
            guard case .some(let raw) = field() else { return nil }
            guard let raw else { return .some(nil) }
            guard let text = String(validating: raw, as: UTF8.self) else { return nil }
            return .some(text)
        }
    }
}
