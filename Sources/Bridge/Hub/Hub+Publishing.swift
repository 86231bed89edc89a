import Support
import System

/// Events to subscribers. The names say where an event goes: `…Here` reaches this node's
/// connections only, `…Everywhere` also the other nodes of a cluster (through `cluster`, nil on one node).
extension Hub {
    /// An event published through the HTTP or seed API: delivered everywhere, and kept as the last
    /// event of a cache channel.
    func publishFromAPI(name: String, channel: ChannelName, data: ArraySlice<UInt8>, dataString: String,
                        except excluded: String?, cacheTTL: Int) {
        debugLog.record(.apiMessage, channel: channel.name, event: name, data: dataString,
                        detail: excluded.map { "excluding socket \($0)" })
        let envelope = PusherEvent.encode(event: name, channel: channel.name, data: .json(data))
        let ttl = channel.isCache ? cacheTTL : nil
        deliverHere(envelope, to: channel.name, except: excluded, cacheTTL: ttl)
        if let ttl {
            authority.keepLastEvent(LastEvent(appID: appID, channel: channel.name, envelope: envelope, data: dataString, ttlMs: ttl * 1000))
        }
        cluster?.broadcast(.channelEvent(appID: appID, channel: channel.name, envelope: envelope, excluded: excluded,
                                         cacheTTL: ttl, dataString: ttl == nil ? nil : dataString))
    }

    /// An event for every subscriber of the channel on every node (client events, seed-mode triggers, subscription counts).
    func publishEverywhere(_ envelope: [UInt8], to channel: String, except excluded: String?) {
        deliverHere(envelope, to: channel, except: excluded, cacheTTL: nil)
        cluster?.broadcast(.channelEvent(appID: appID, channel: channel, envelope: envelope, excluded: excluded,
                                         cacheTTL: nil, dataString: nil))
    }

    /// A `#server-to-user-{id}` event from the HTTP API: to every connection of that user on every node.
    func publishToUserEverywhere(_ envelope: [UInt8], userID: String) {
        sendToUserHere(.webSocketFrame(.text, envelope), userID: userID)
        cluster?.broadcast(.userEvent(appID: appID, userID: userID, envelope: envelope))
    }

    /// Another node's message (or the authority's member event), for this node's connections.
    func receive(_ message: ClusterMessage) {
        switch message {
        case let .channelEvent(_, channel, envelope, excluded, cacheTTL, _):
            deliverHere(envelope, to: channel, except: excluded, cacheTTL: cacheTTL)
        case let .userEvent(_, userID, envelope):
            sendToUserHere(.webSocketFrame(.text, envelope), userID: userID)
        case let .terminateUser(_, userID):
            closeConnectionsHere(of: userID)
        case let .memberChange(_, channel, userID, added, _, _, _) where channel == Hub.onlineChannel:
            let watchers = directory.withLock { $0.onlineWatchers(of: userID) }
            tellWatchers(userID, online: added, watchers)
        case let .memberChange(_, channel, userID, added, info, excluded, version):
            let frame = added ? Hub.memberAddedFrame(channel, userID, info ?? "null") : Hub.memberRemovedFrame(channel, userID)
            deliverMemberEventHere(frame, to: channel, except: excluded, version: version)
        case let .heldArrival(_, holder, channel, userID):
            if holder == cluster?.nodeID { emit(Hub.arrival(channel, userID: userID)) }
        }
    }

    /// Queues `frame` on this node's subscribers of `channel`, on every loop that has one, except
    /// the connection whose socket id is `excluded`.
    func publishHere(_ frame: OutboundBuffer, to channel: String, except excluded: String? = nil) {
        let perLoop = directory.withLock { $0.channels[channel]?.subscribersPerLoop }
        guard let perLoop else { return }
        let loops = group.loops
        for (index, count) in perLoop.enumerated() where count > 0 && index < loops.count {
            let shard = shards[index]
            loops[index].execute { _ in shard.deliver(frame, to: channel, except: excluded) }
        }
    }

    /// One frame of `envelope` for this node's subscribers; on cache channels (`cacheTTL` set) the
    /// channel also counts as cached until the TTL runs out.
    private func deliverHere(_ envelope: [UInt8], to channel: String, except excluded: String?, cacheTTL: Int?) {
        if let cacheTTL {
            let limit = cacheLimit.load(ordering: .relaxed)
            let kept = directory.withLock { $0.keepCached(channel, until: MonotonicClock.seconds + Double(cacheTTL), loopCount: shards.count, limit: limit) }
            // Publishers are refused before this (admitsCache); only a race among them gets here.
            if !kept { Log.debug("app \(appID): \(channel) not cached, the app is at max_cache_channels (\(limit))") }
        }
        publishHere(.webSocketFrame(.text, envelope), to: channel, except: excluded)
    }

    /// A member event for this node's subscribers whose member list is older than `version`.
    private func deliverMemberEventHere(_ frame: OutboundBuffer, to channel: String, except excluded: String?, version: Int) {
        let perLoop = directory.withLock { $0.channels[channel]?.subscribersPerLoop }
        guard let perLoop else { return }
        for (index, count) in perLoop.enumerated() where count > 0 && index < group.loops.count {
            let shard = shards[index]
            group.loops[index].enqueue { _ in shard.deliverMemberEvent(frame, to: channel, except: excluded, version: version) }
        }
    }

    static func memberAddedFrame(_ channel: String, _ userID: String, _ info: String) -> OutboundBuffer {
        PusherEvent.frame(event: "pusher_internal:member_added", channel: channel,
                          data: JSONWriter.object { $0.field("user_id", userID); $0.rawField("user_info", info) }.text)
    }

    static func memberRemovedFrame(_ channel: String, _ userID: String) -> OutboundBuffer {
        PusherEvent.frame(event: "pusher_internal:member_removed", channel: channel,
                          data: JSONWriter.object { $0.field("user_id", userID) }.text)
    }
}
