/// The HTTP API's questions about channels, answered by the authority (for the whole cluster
/// when there is one; nil when it cannot be reached), and this node's own view for the console.
extension Hub {
    struct ChannelInfo: Sendable {
        let occupied: Bool
        let subscriptionCount: Int
        let userCount: Int
        let lastEvent: LastEvent?
    }

    func channelInfo(_ name: String, completion: @escaping @Sendable (ChannelInfo?) -> Void) {
        authority.channel(appID: appID, name: name) { summary in
            completion(summary.map { ChannelInfo(occupied: $0.subscriptionCount > 0, subscriptionCount: $0.subscriptionCount,
                                                 userCount: $0.userCount, lastEvent: $0.lastEvent) })
        }
    }

    /// This node's counts of one channel.
    func channelInfoHere(_ name: String) -> ChannelInfo {
        directory.withLock { d in
            let state = d.channels[name]
            return ChannelInfo(occupied: (state?.subscribers ?? 0) > 0, subscriptionCount: state?.subscribers ?? 0,
                               userCount: state?.userCount ?? 0, lastEvent: nil)
        }
    }

    func occupiedChannels(prefix: String, completion: @escaping @Sendable ([ChannelSummary]?) -> Void) {
        authority.occupiedChannels(appID: appID) { channels in
            completion(channels?.filter { $0.name.hasPrefix(prefix) && $0.name != Hub.onlineChannel })
        }
    }

    /// This node's occupied channels whose name starts with `prefix`, with their counts here.
    func occupiedChannelsHere(prefix: String) -> [ChannelSummary] {
        directory.withLock { d in
            d.channels.compactMap { name, state in
                guard state.subscribers > 0, name.hasPrefix(prefix) else { return nil }
                return ChannelSummary(name: name, subscriptionCount: state.subscribers, userCount: state.userCount)
            }
        }.sorted { $0.name < $1.name }
    }

    func presenceUserIDs(_ channel: String, completion: @escaping @Sendable ([String]?) -> Void) {
        authority.presenceUserIDs(appID: appID, channel: channel, completion: completion)
    }
}
