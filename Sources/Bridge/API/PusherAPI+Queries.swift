import Support

/// The HTTP API's questions about channels (PROTOCOL.md §1.15): answered by the state authority,
/// for the whole cluster when there is one, so the answer may come later and from another thread.
extension PusherAPI {
    /// `{"channels":{"<name>":{"user_count"?,"subscription_count"?},…}}`: occupied channels by prefix.
    func channels(_ call: Call) throws(APIError) -> Reply {
        let prefix = call.request.queryValue("filter_by_prefix") ?? ""
        let attributes = try Self.attributes(call.request.queryValue("info") ?? "", allowed: ["user_count", "subscription_count"])
        if attributes.contains("user_count") && !prefix.hasPrefix("presence-") {
            throw APIError(400, "user_count is only available with filter_by_prefix=presence-")
        }
        return .fromAuthority { [hub = call.app.hub] respond in
            hub.occupiedChannels(prefix: prefix) { channels in
                guard let channels else { return respond(Self.authorityUnreachable) }
                respond(.json(200, JSONWriter.object { json in
                    json.objectField("channels") {
                        for channel in channels {
                            $0.objectField(channel.name) {
                                if attributes.contains("user_count") { $0.field("user_count", channel.userCount) }
                                if attributes.contains("subscription_count") { $0.field("subscription_count", channel.subscriptionCount) }
                            }
                        }
                    }
                }))
            }
        }
    }

    /// `{"occupied":…,"user_count"?,"subscription_count"?,"cache"?:{"data","ttl"}}` for one channel.
    func channel(_ call: Call) throws(APIError) -> Reply {
        let channel = try Self.channelName(call)
        let attributes = try Self.attributes(call.request.queryValue("info") ?? "", allowed: ["user_count", "subscription_count", "cache"])
        if attributes.contains("user_count") && channel.kind != .presence {
            throw APIError(400, "user_count is only available for presence channels")
        }
        if attributes.contains("cache") && !channel.isCache {
            throw APIError(400, "cache is only available for cache channels")
        }
        return .fromAuthority { [hub = call.app.hub] respond in
            hub.channelInfo(channel.name) { state in
                guard let state else { return respond(Self.authorityUnreachable) }
                respond(.json(200, JSONWriter.object {
                    $0.field("occupied", state.occupied)
                    if attributes.contains("user_count") { $0.field("user_count", state.userCount) }
                    if attributes.contains("subscription_count") { $0.field("subscription_count", state.subscriptionCount) }
                    if attributes.contains("cache"), let cached = state.lastEvent {
                        // Whole seconds left, rounded up.
                        let ttl = max(0, cached.ttlMs / 1000 + (cached.ttlMs % 1000 > 0 ? 1 : 0))
                        $0.objectField("cache") {
                            $0.field("data", cached.data)
                            $0.field("ttl", ttl)
                        }
                    }
                }))
            }
        }
    }

    /// `{"users":[{"id":…},…]}`: the members of a presence channel.
    func users(_ call: Call) throws(APIError) -> Reply {
        let channel = try Self.channelName(call)
        guard channel.kind == .presence else { throw APIError(400, "Users are only available for presence channels") }
        return .fromAuthority { [hub = call.app.hub] respond in
            hub.presenceUserIDs(channel.name) { users in
                guard let users else { return respond(Self.authorityUnreachable) }
                respond(.json(200, JSONWriter.object { json in
                    json.arrayField("users") { for user in users { $0.object { $0.field("id", user) } } }
                }))
            }
        }
    }
}
