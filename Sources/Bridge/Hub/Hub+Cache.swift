import System
/// Cache channels (PROTOCOL.md §1.11), counted per app so that publishing to ever new `cache-`
/// names cannot fill memory: past `max_cache_channels` a publish that would cache one more is
/// refused. The events themselves are kept by the authority; the directory counts which channels hold one.
extension Hub {
    /// Whether publishing to `channels` keeps the app within `limit` cached channels.
    func admitsCache(_ channels: [ChannelName], limit: Int) -> Bool {
        let now = MonotonicClock.seconds
        return directory.withLock { d in
            let new = channels.filter { channel in
                channel.isCache && d.channels[channel.name]?.cacheExpiresAt.map { $0 > now } != true
            }.count
            return new == 0 || d.cachedChannels + new <= limit
        }
    }
}

extension Hub.Directory {
    /// Counts `channel` as cached until `expiresAt`; false when that would be one cached channel past `limit`.
    mutating func keepCached(_ channel: String, until expiresAt: Double, loopCount: Int, limit: Int) -> Bool {
        if channels[channel]?.cacheExpiresAt == nil {
            guard cachedChannels < limit else { return false }
            cachedChannels += 1
        }
        channels[channel, default: ChannelState(loopCount: loopCount)].cacheExpiresAt = expiresAt
        return true
    }

    /// Forgets cached events past their TTL, and channels left with nothing worth keeping.
    mutating func dropExpired(now: Double) {
        for name in channels.keys { removeIfEmpty(name, now: now) }
    }

    /// Drops the channel when it has no subscriber here and no cached event within its TTL; an
    /// expired one no longer counts against the limit.
    mutating func removeIfEmpty(_ name: String, now: Double) {
        guard let state = channels[name] else { return }
        if let expiresAt = state.cacheExpiresAt, expiresAt <= now {
            channels[name]!.cacheExpiresAt = nil
            cachedChannels -= 1
        }
        if channels[name]!.isEmpty(now: now) {
            channels[name] = nil
            pendingCounts.remove(name)
        }
    }
}
