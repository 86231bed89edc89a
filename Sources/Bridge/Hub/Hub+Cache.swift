import Synchronization

/// Cache channels' last events, counted per app so that publishing to ever new `cache-` names
/// cannot fill memory: past `max_cache_channels` a publish that would cache one more is refused.
extension Hub {
    /// Whether publishing to `channels` keeps the app within `limit` cached channels.
    func admitsCache(_ channels: [ChannelName], limit: Int) -> Bool {
        let now = Hub.now
        return directory.withLock { d in
            let new = channels.filter { channel in
                channel.isCache && d.channels[channel.name]?.cache.map { $0.expiresAt > now } != true
            }.count
            return new == 0 || d.cachedChannels + new <= limit
        }
    }
}

extension Hub.Directory {
    /// Keeps `event` as the channel's last event; false when that would be one cached channel past `limit`.
    mutating func keepLastEvent(_ event: CachedEvent, in channel: String, loopCount: Int, limit: Int) -> Bool {
        if channels[channel]?.cache == nil {
            guard cachedChannels < limit else { return false }
            cachedChannels += 1
        }
        if channels[channel] == nil { channels[channel] = ChannelState(loopCount: loopCount) }
        channels[channel]!.cache = event
        channels[channel]!.cacheMissReported = false
        return true
    }

    /// Forgets cached events past their TTL, and channels left with nothing worth keeping.
    mutating func dropExpired(now: Double) {
        for (name, state) in channels {
            if let cache = state.cache, cache.expiresAt <= now {
                channels[name]!.cache = nil
                cachedChannels -= 1
            }
            if channels[name]!.isEmpty(now: now) { channels[name] = nil }
        }
    }
}
