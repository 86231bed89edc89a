import Support

/// This node's share of one channel of one app: how many of its connections subscribe (and on
/// which loops), its presence members here, and what the authority last said about the whole
/// channel. Lives in `Hub.directory`, behind the lock.
struct ChannelState {
    /// Subscriptions on this node.
    private(set) var subscribers = 0
    /// Subscriptions per loop: a publish visits only the loops that have some.
    private(set) var subscribersPerLoop: [Int]
    /// This node's presence members by user id, with how many of that user's connections are in the channel.
    private(set) var members: [String: PresenceMember] = [:]
    /// Until when the channel holds a cached event (counted against `max_cache_channels`).
    var cacheExpiresAt: Double?
    /// For the `subscription_count` throttle (PROTOCOL.md §1.13).
    var countSentAt = -Double.infinity
    /// The subscriptions over every node, as the authority last answered.
    var totalSubscribers = 0

    init(loopCount: Int) {
        subscribersPerLoop = Array(repeating: 0, count: loopCount)
    }

    struct PresenceMember {
        var connections: Int
        /// `user_info` as the JSON text the authorizing backend signed, or `null`.
        var info: String
    }

    enum JoinRefusal: Error {
        case presenceFull(limit: Int)
    }

    /// Counts one more subscription on `loop`; for presence, one more connection of `member`.
    /// Returns whether this is the member's first connection here. A new member is refused at
    /// once when this node alone has `maxMembers` (the authority checks the whole channel).
    mutating func join(loop: Int, member: PresenceIdentity?, maxMembers: Int) throws(JoinRefusal) -> Bool {
        var firstHere = false
        if let member {
            if members[member.userID] == nil {
                guard members.count < maxMembers else { throw .presenceFull(limit: maxMembers) }
                firstHere = true
                members[member.userID] = PresenceMember(connections: 1, info: member.info)
            } else {
                members[member.userID]!.connections += 1
            }
        }
        subscribers += 1
        subscribersPerLoop[loop] += 1
        return firstHere
    }

    /// The reverse of `join`: whether the member's last connection here left.
    mutating func leave(loop: Int, memberID: String?) -> Bool {
        var lastHere = false
        if let memberID, let member = members[memberID] {
            if member.connections <= 1 {
                members[memberID] = nil
                lastHere = true
            } else {
                members[memberID]!.connections -= 1
            }
        }
        subscribers -= 1
        subscribersPerLoop[loop] -= 1
        return lastHere
    }

    /// This node's share, as the authority records it: the subscriptions, and the one member whose connections changed.
    func share(appID: String, channel: String, member userID: String?) -> ChannelShare {
        ChannelShare(appID: appID, channel: channel, subscriptions: subscribers,
                     members: userID.map { [MemberShare(userID: $0, connections: connections(of: $0), info: members[$0]?.info ?? "null")] } ?? [])
    }

    /// `{"presence":{"ids":[…],"hash":{…},"count":N}}`, the data of a presence `subscription_succeeded`.
    static func presenceJSON(_ members: [(id: String, info: String)]) -> String {
        let sorted = members.sorted(by: { $0.id < $1.id })
        return JSONWriter.object {
            $0.objectField("presence") {
                $0.arrayField("ids") { for member in sorted { $0.string(member.id) } }
                $0.objectField("hash") { for member in sorted { $0.rawField(member.id, member.info) } }
                $0.field("count", members.count)
            }
        }.text
    }

    /// This node's members, for the answer while the authority cannot be reached.
    var presenceJSON: String {
        Self.presenceJSON(members.map { (id: $0.key, info: $0.value.info) })
    }

    /// This node's share of the channel's presence members.
    var memberShares: [MemberShare] {
        members.map { MemberShare(userID: $0.key, connections: $0.value.connections, info: $0.value.info) }
    }

    func connections(of userID: String) -> Int { members[userID]?.connections ?? 0 }

    var userCount: Int { members.count }

    /// Whether anything is left worth keeping: subscribers, or a cached event within its TTL.
    func isEmpty(now: Double) -> Bool {
        subscribers == 0 && (cacheExpiresAt.map { $0 <= now } ?? true)
    }
}
