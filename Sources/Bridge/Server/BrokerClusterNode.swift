/// The broker's apps, as the cluster adapter reaches them: each call goes to the app it names.
struct BrokerClusterNode: ClusterNode {
    let apps: AppRegistry

    func receive(_ message: ClusterMessage) {
        apps.app(id: message.appID)?.hub.receive(message)
    }

    func apply(_ change: ChannelChange) {
        guard let app = apps.app(id: change.appID) else { return }
        app.hub.apply(change, countsEnabled: app.config.enableSubscriptionCount)
    }

    func restoreShares() {
        for app in apps.all { app.hub.restoreShares() }
    }

    func connectionCounts() -> [String: Int] {
        Dictionary(apps.all.map { ($0.id, $0.connectionCount) }, uniquingKeysWith: +)
    }

    func otherNodesHave(connections: [String: Int]) {
        for app in apps.all { app.otherNodesConnections.store(connections[app.id] ?? 0, ordering: .relaxed) }
    }
}
