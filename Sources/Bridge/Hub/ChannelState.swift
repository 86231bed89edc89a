import Support

/// What every loop must agree on about one channel of one app: how many subscribers it has (and
/// on which loops), its presence members, its cached event. Lives in `Hub.directory`, behind the lock.
struct ChannelState {
    /// Subscriptions over all loops: the channel is occupied while this is above zero.
    private(set) var subscribers = 0
    /// Subscriptions per loop: a publish visits only the loops that have some.
    private(set) var subscribersPerLoop: [Int]
    /// Presence members by user id, with how many of that user's connections are in the channel.
    private(set) var members: [String: PresenceMember] = [:]
    /// The last event published through the HTTP API, for `cache-` channels.
    var cache: CachedEvent?
    /// Set once a `cache_miss` was reported for the empty cache, cleared when an event fills it.
    var cacheMissReported = false
    /// For the `subscription_count` throttle (PROTOCOL.md §1.13).
    var countSentAt = -Double.infinity
    /// In a cluster: the subscriptions over all nodes, as the shared state last answered.
    var clusterSubscribers = 0

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
    /// Returns whether the channel just became occupied and whether this is the member's first connection.
    mutating func join(loop: Int, member: (id: String, info: String)?, maxMembers: Int) throws(JoinRefusal) -> (occupied: Bool, firstOfUser: Bool) {
        var firstOfUser = false
        if let member {
            if members[member.id] == nil {
                guard members.count < maxMembers else { throw .presenceFull(limit: maxMembers) }
                firstOfUser = true
                members[member.id] = PresenceMember(connections: 1, info: member.info)
            } else {
                members[member.id]!.connections += 1
            }
        }
        subscribers += 1
        subscribersPerLoop[loop] += 1
        return (subscribers == 1, firstOfUser)
    }

    /// The reverse of `join`: whether the channel is now vacated and whether the member's last connection left.
    mutating func leave(loop: Int, memberID: String?) -> (vacated: Bool, lastOfUser: Bool) {
        var lastOfUser = false
        if let memberID, let member = members[memberID] {
            if member.connections <= 1 {
                members[memberID] = nil
                lastOfUser = true
            } else {
                members[memberID]!.connections -= 1
            }
        }
        subscribers -= 1
        subscribersPerLoop[loop] -= 1
        return (subscribers == 0, lastOfUser)
    }

    /// `{"presence":{"ids":[…],"hash":{…},"count":N}}`, the data of a presence `subscription_succeeded`.
    var presenceJSON: String {
        Self.presenceJSON(members.map { (id: $0.key, info: $0.value.info) })
    }

    /// The same for members given by id and `user_info` JSON text (the cluster's answer).
    static func presenceJSON(_ members: [(id: String, info: String)]) -> String {
        var ids: [String] = []
        var hash: [String] = []
        ids.reserveCapacity(members.count)
        hash.reserveCapacity(members.count)
        for member in members.sorted(by: { $0.id < $1.id }) {
            let quoted = "\"" + JSONString.escaped(member.id) + "\""
            ids.append(quoted)
            hash.append(quoted + ":" + member.info)
        }
        return #"{"presence":{"ids":["# + ids.joined(separator: ",") + #"],"hash":{"# + hash.joined(separator: ",")
            + #"},"count":\#(members.count)}}"#
    }

    /// This node's share of the channel's presence members.
    var memberShares: [MemberShare] {
        members.map { MemberShare(userID: $0.key, connections: $0.value.connections, info: $0.value.info) }
    }

    func connections(of userID: String) -> Int { members[userID]?.connections ?? 0 }

    var memberIDs: [String] { members.keys.sorted() }
    var userCount: Int { members.count }

    /// Whether anything is left worth keeping: subscribers, or a cached event still within its TTL.
    func isEmpty(now: Double) -> Bool {
        subscribers == 0 && (cache.map { $0.expiresAt <= now } ?? true)
    }
}

/// The last event published to a cache channel (PROTOCOL.md §1.11).
struct CachedEvent: Sendable {
    /// The event as a frame, shared by every later subscriber.
    let frame: OutboundBuffer
    /// The event's data as the publisher gave it, for `GET …/channels/{name}?info=cache`.
    let data: String
    /// Monotonic seconds.
    let expiresAt: Double

    init(frame: OutboundBuffer, data: String, expiresAt: Double) {
        self.frame = frame
        self.data = data
        self.expiresAt = expiresAt
    }

    /// The cluster's copy, as the shared state returned it.
    init(_ last: LastEvent) {
        self.init(frame: .webSocketFrame(.text, last.envelope), data: last.data, expiresAt: Hub.now + Double(last.ttlMs) / 1000)
    }
}
