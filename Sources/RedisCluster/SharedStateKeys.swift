/// The names of the cluster's keys in Redis, all under one prefix so that two clusters can share
/// a Redis. App ids and user ids may hold any character; channel names never hold a colon, so a
/// channel hash's name ends with the channel after the last colon.
struct SharedStateKeys: Sendable {
    let prefix: String

    /// The pub/sub channel every node publishes its events to.
    var events: String { prefix + ":events" }
    /// The channel hashes (see `SharedStateScripts`): `<prefix>:ch:<app>:<channel>`.
    var channelPrefix: String { prefix + ":ch:" }
    func channel(app: String, _ name: String) -> String { channelPrefix + app + ":" + name }
    /// A cache channel's last event: a hash {e: envelope, d: data} that expires with its TTL.
    func lastEvent(app: String, _ name: String) -> String { prefix + ":last:" + app + ":" + name }
    /// The set of an app's occupied channel names.
    var channelSetPrefix: String { prefix + ":channels:" }
    func channelSet(app: String) -> String { channelSetPrefix + app }
    /// Every node that has written shares, until it leaves or is swept.
    var nodes: String { prefix + ":nodes" }
    /// The channel hashes a node has a share in, for the sweep after it dies.
    func index(node: String) -> String { prefix + ":node:" + node + ":keys" }
    /// Exists while the node is alive (expires with its lease).
    var leasePrefix: String { prefix + ":lease:" }
    func lease(node: String) -> String { leasePrefix + node }
    /// A node's open connections per app, for the cluster-wide `max_connections`.
    var connectionsPrefix: String { prefix + ":conns:" }
    func connections(node: String) -> String { connectionsPrefix + node }
    /// Random, set once: a new value means Redis lost its data and every node must restore its share.
    var epoch: String { prefix + ":epoch" }

    /// The app and channel of a channel hash name; nil for a name that is not one.
    func channelOf(key: String) -> (app: String, channel: String)? {
        guard key.hasPrefix(channelPrefix), let colon = key.lastIndex(of: ":") else { return nil }
        let start = key.index(key.startIndex, offsetBy: channelPrefix.count)
        guard colon >= start else { return nil }
        return (String(key[start..<colon]), String(key[key.index(after: colon)...]))
    }
}
