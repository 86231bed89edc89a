import Bridge
import Redis

/// Reads the scripts' replies (`SharedStateScripts`) into the broker's types; nil for a reply of
/// another shape, which the adapter reports as a protocol problem.
enum SharedStateReply {
    /// `{key, total, users, channelEvent, {user, event, info, …}, {id, info, …}, version}`, and
    /// from `record` also `{envelope, data, ttl ms, missed}` of a cache channel's last event.
    static func change(_ value: RESPValue, keys: SharedStateKeys) -> ChannelChange? {
        guard let fields = value.array, fields.count == 7 || fields.count == 11, let version = fields[6].integer,
              let key = fields[0].string, let (app, channel) = keys.channelOf(key: key),
              let total = fields[1].integer, let users = fields[2].integer,
              let channelEvent = fields[3].string.flatMap(transition),
              let flatEvents = fields[4].array, flatEvents.count % 3 == 0,
              let flatMembers = fields[5].array, flatMembers.count % 2 == 0 else { return nil }
        var memberTransitions: [ChannelChange.Member] = []
        for i in stride(from: 0, to: flatEvents.count, by: 3) {
            guard let user = flatEvents[i].string, let event = flatEvents[i + 1].string.flatMap(transition),
                  let info = flatEvents[i + 2].string else { return nil }
            memberTransitions.append(.init(userID: user, transition: event, info: info))
        }
        var members: [(id: String, info: String)] = []
        for i in stride(from: 0, to: flatMembers.count, by: 2) {
            guard let id = flatMembers[i].string, let info = flatMembers[i + 1].string else { return nil }
            members.append((id, info))
        }
        var lastEvent: LastEvent?
        var missed = false
        if fields.count == 11 {
            guard let envelope = fields[7].bytes, let data = fields[8].string, let ttl = fields[9].integer,
                  let missedFlag = fields[10].integer else { return nil }
            if !envelope.isEmpty && ttl > 0 {
                lastEvent = LastEvent(appID: app, channel: channel, envelope: envelope, data: data, ttlMs: Int(ttl))
            }
            missed = missedFlag == 1
        }
        return ChannelChange(appID: app, channel: channel, subscriptionCount: Int(total), userCount: Int(users),
                             transition: channelEvent, memberTransitions: memberTransitions, members: members,
                             membersVersion: Int(version), lastEvent: lastEvent, lastEventMissed: missed)
    }

    /// "" none, "+" arrived, "-" departed, "~<node>" arrived within the grace window `<node>` holds.
    static func transition(_ text: String) -> ClusterTransition? {
        switch text.first {
        case nil: .unchanged
        case "+" where text.count == 1: .arrived
        case "-" where text.count == 1: .departed
        case "~" where text.count > 1: .returned(holder: String(text.dropFirst()))
        default: nil
        }
    }

    /// `{subscriptions, users, envelope, data, ttl ms}` of the `channelInfo` script.
    static func channel(_ value: RESPValue, app: String, name: String) -> ChannelSummary? {
        guard let fields = value.array, fields.count == 5, let total = fields[0].integer, let users = fields[1].integer,
              let envelope = fields[2].bytes, let data = fields[3].string, let ttl = fields[4].integer else { return nil }
        let lastEvent = envelope.isEmpty || ttl <= 0 ? nil : LastEvent(appID: app, channel: name, envelope: envelope, data: data, ttlMs: Int(ttl))
        return ChannelSummary(name: name, subscriptionCount: max(0, Int(total)), userCount: max(0, Int(users)), lastEvent: lastEvent)
    }

    /// `{name, subscriptions, users, …}` of the `occupied` script.
    static func summaries(_ value: RESPValue) -> [ChannelSummary]? {
        guard let flat = value.array, flat.count % 3 == 0 else { return nil }
        var out: [ChannelSummary] = []
        for i in stride(from: 0, to: flat.count, by: 3) {
            guard let name = flat[i].string, let total = flat[i + 1].integer, let users = flat[i + 2].integer else { return nil }
            out.append(ChannelSummary(name: name, subscriptionCount: Int(total), userCount: Int(users)))
        }
        return out.sorted { $0.name < $1.name }
    }

    struct Heartbeat {
        let renewed: Bool
        let epoch: String
        let deadNodes: [String]
        let otherNodesConnections: [String: Int]
    }

    /// `{renewed, epoch, {dead nodes}, {app, connections, …}}`.
    static func heartbeat(_ value: RESPValue) -> Heartbeat? {
        guard let fields = value.array, fields.count == 4, let renewed = fields[0].integer, let epoch = fields[1].string,
              let dead = fields[2].array, let flat = fields[3].array, flat.count % 2 == 0 else { return nil }
        var connections: [String: Int] = [:]
        for i in stride(from: 0, to: flat.count, by: 2) {
            guard let app = flat[i].string, let count = flat[i + 1].integer else { return nil }
            connections[app] = Int(count)
        }
        return Heartbeat(renewed: renewed == 1, epoch: epoch, deadNodes: dead.compactMap(\.string), otherNodesConnections: connections)
    }
}
