import Support

/// `pusher:subscribe` and `pusher:unsubscribe` (PROTOCOL.md §1.6–§1.8, §1.11): the checks that
/// depend on this connection, then `SubscribeAuthorization`'s verdict, then the hub.
extension PusherSession {
    struct Subscription {
        let channel: ChannelName
        /// The presence user id the subscription was authorized for; nil on other channels.
        let memberID: String?
        /// Tells this subscription from an earlier one to the same channel (for answers that come later).
        let serial: Int
    }

    func subscribe(_ data: JSONObject?) {
        guard let name = data?["channel"]?.stringValue, let data else {
            return report(.malformed(#"pusher:subscribe needs data.channel"#))
        }
        let config = app.config
        // Every request counts, a repeated or refused one too: each costs an answer (and in a cluster a Redis call).
        guard takeSubscribeToken(rate: config.maxSubscriptionsPerSecond) else {
            return refuse(name, .rateLimited(perSecond: config.maxSubscriptionsPerSecond))
        }
        if let subscription = subscriptions[name] { return subscribeAgain(subscription) }
        guard !connection.loop.group.memory.isOver else { return refuse(name, .overMemory) }
        guard subscriptions.count < Self.maxSubscriptions else { return refuse(name, .tooManySubscriptions(limit: Self.maxSubscriptions)) }

        let request = SubscribeAuthorization.Request(channel: name, auth: data["auth"]?.stringValue,
                                                     channelData: data["channel_data"]?.stringValue)
        let credentials = SubscribeAuthorization.Credentials(socketID: socketID, signedInUser: userID, seed: isSeed,
                                                             seedUserID: seed?.userID)
        switch SubscribeAuthorization.authorize(request, config: config, credentials: credentials) {
        case .failure(let refusal): refuse(name, refusal)
        case .success(let grant): join(grant)
        }
    }

    /// Idempotent: acknowledged again, nothing added (PROTOCOL.md §1.6). A presence channel's
    /// members come from the authority, as on the first subscribe.
    private func subscribeAgain(_ subscription: Subscription) {
        let channel = subscription.channel
        if let memberID = subscription.memberID {
            memberLists[channel.name] = .awaited(events: [])
            return hub.resubscribed(self, serial: subscription.serial, channel: channel, memberID: memberID)
        }
        send(event: "pusher_internal:subscription_succeeded", channel: channel.name, data: "{}")
    }

    private func join(_ grant: SubscribeAuthorization.Grant) {
        let config = app.config
        let channel = grant.channel
        subscriptionSerials += 1
        let serial = subscriptionSerials
        do {
            try hub.join(self, channel, serial: serial, member: grant.member, maxMembers: config.maxPresenceMembersPerChannel,
                         countsEnabled: config.enableSubscriptionCount) {
                subscriptions[channel.name] = Subscription(channel: channel, memberID: grant.member?.userID, serial: serial)
                app.debugLog.record(.subscribed, channel: channel.name, detail: DebugLog.connection(socketID, userID: grant.member?.userID))
                if channel.requiresAuth { hub.shard(loopIndex).authorized(self) }
                if channel.kind == .presence {
                    memberLists[channel.name] = .awaited(events: [])
                } else if !channel.isCache {
                    acknowledge(channel, succeededData: "{}", lastEventFrame: nil)
                }
            }
        } catch {
            refuse(channel.name, .presenceFull(channel: channel.name, limit: config.maxPresenceMembersPerChannel))
        }
    }

    /// What the authority answered to a presence or cache subscribe.
    struct JoinAnswer: Sendable {
        /// The subscription it answers (an answer for an earlier one is dropped).
        let serial: Int
        let succeededData: String
        let membersVersion: Int
        /// Cache channels: the last event, nil for a miss.
        let lastEventFrame: OutboundBuffer?
    }

    /// Presence and cache subscriptions are acknowledged once the channel's member list and last
    /// event are known; member events that came meanwhile follow, unless the list has them.
    func answered(_ channel: String, _ answer: JoinAnswer) {
        guard !ended, let subscription = subscriptions[channel], subscription.serial == answer.serial else { return }
        acknowledge(subscription.channel, succeededData: answer.succeededData, lastEventFrame: answer.lastEventFrame)
        guard subscription.channel.kind == .presence else { return }
        var newerSent = false
        if case .awaited(let events)? = memberLists[channel] {
            for event in events where event.version > answer.membersVersion {
                send(event.frame)
                newerSent = true
            }
        }
        memberLists[channel] = newerSent ? nil : .received(version: answer.membersVersion)
    }

    /// A member event from the authority: sent unless the member list this client got already has it.
    func memberEvent(_ frame: OutboundBuffer, on channel: String, version: Int) {
        guard !memberLists.isEmpty, let list = memberLists[channel] else { return send(frame) }
        switch list {
        case .awaited(var events):
            events.append((version, frame))
            memberLists[channel] = .awaited(events: events)
        case .received(let listVersion) where version <= listVersion:
            break
        case .received:
            memberLists[channel] = nil
            send(frame)
        }
    }

    /// The presence channel already has as many users as it may, counting every node: the
    /// subscription is refused and undone here (the authority never counted it).
    func refusedAsFull(_ channel: String, serial: Int, limit: Int) {
        guard !ended, subscriptions[channel]?.serial == serial else { return }
        unsubscribe(channel)
        refuse(channel, .presenceFull(channel: channel, limit: limit))
    }

    /// `subscription_succeeded`, then on cache channels the last event (or `pusher:cache_miss`).
    private func acknowledge(_ channel: ChannelName, succeededData: String, lastEventFrame: OutboundBuffer?) {
        send(event: "pusher_internal:subscription_succeeded", channel: channel.name, data: succeededData)
        if channel.isCache {
            send(lastEventFrame ?? PusherEvent.frame(event: "pusher:cache_miss", channel: channel.name, data: nil as String?))
        }
    }

    func unsubscribe(_ name: String) {
        guard let subscription = subscriptions.removeValue(forKey: name) else { return }
        leave(subscription)
    }

    func leave(_ subscription: Subscription) {
        let name = subscription.channel.name
        memberLists[name] = nil
        hub.leave(self, subscription.channel, memberID: subscription.memberID, countsEnabled: app.config.enableSubscriptionCount)
        app.debugLog.record(.unsubscribed, channel: name, detail: DebugLog.connection(socketID, userID: subscription.memberID))
    }

    /// Both a `pusher:error` and a channel-scoped `pusher:subscription_error`; the connection stays
    /// open (PROTOCOL.md §1.6).
    private func refuse(_ channel: String, _ refusal: SubscribeRefusal) {
        report(refusal.error)
        let data = JSONWriter.object {
            $0.field("type", refusal.type)
            $0.field("error", refusal.message)
            $0.field("status", refusal.status)
        }.text
        send(event: "pusher:subscription_error", channel: channel, data: data)
    }

    private func takeSubscribeToken(rate: Int) -> Bool {
        let now = connection.loop.seconds
        // A reload that changed the rate starts a new bucket.
        var bucket = subscribeTokens.flatMap { $0.rate == Double(rate) ? $0 : nil }
            ?? TokenBucket(rate: Double(rate), burst: Double(rate) * 10, now: now)
        let taken = bucket.take(now: now)
        subscribeTokens = bucket
        return taken
    }
}
