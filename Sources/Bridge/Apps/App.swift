import Synchronization
import System

/// One app at run time: its settings (replaced on reload), its hub, its counters.
public final class App: Sendable {
    public let id: String
    private let settings: Mutex<AppConfig>
    let hub: Hub
    /// What the debug console shows; records only while a console watches.
    let debugLog = DebugLog()
    /// Open Pusher connections, against `max_connections`.
    private let connections = Atomic<Int>(0)
    /// In a cluster: the other nodes' connections, as of the last heartbeat.
    let otherNodesConnections = Atomic<Int>(0)
    /// Events published through the HTTP API in the current second, against `max_backend_events_per_sec`.
    private let backendEvents = Mutex<(second: Int, count: Int)>((0, 0))

    init(config: AppConfig, group: LoopGroup, loopCount: Int, outlets: HubOutlets) {
        id = config.id
        settings = Mutex(config)
        hub = Hub(appID: config.id, group: group, loopCount: loopCount, outlets: outlets, debugLog: debugLog)
        hub.cacheLimit.store(config.maxCacheChannels, ordering: .relaxed)
    }

    public var config: AppConfig { settings.withLock { $0 } }

    func update(_ config: AppConfig) {
        settings.withLock { $0 = config }
        hub.cacheLimit.store(config.maxCacheChannels, ordering: .relaxed)
    }

    /// Whether `config` (of this id) may take over this app's hub and connections: only when it
    /// names the same key, secret and organization.
    func isSameApp(as config: AppConfig) -> Bool {
        let current = self.config
        return current.key == config.key && current.secret == config.secret && current.organization == config.organization
    }

    /// Takes a connection slot; false when the app is at `max_connections`.
    func admitConnection(limit: Int?) -> Bool {
        let count = connections.add(1, ordering: .relaxed).newValue
        if let limit, count + otherNodesConnections.load(ordering: .relaxed) > limit {
            connections.subtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func releaseConnection() {
        connections.subtract(1, ordering: .relaxed)
    }

    public var connectionCount: Int { connections.load(ordering: .relaxed) }

    /// Takes `count` events from this second's backend budget; false (and nothing taken) when over.
    func admitBackendEvents(_ count: Int, limit: Int?) -> Bool {
        guard let limit else { return true }
        let second = Int(MonotonicClock.seconds)
        return backendEvents.withLock { window in
            if window.second != second { window = (second, 0) }
            guard window.count + count <= limit else { return false }
            window.count += count
            return true
        }
    }
}

/// The apps by key (for `/app/{key}`) and by id (for `/apps/{id}/…`), swapped as a whole on reload.
public final class AppRegistry: Sendable {
    private let group: LoopGroup
    private let loopCount: Int
    private let outlets: HubOutlets
    private let state: Mutex<(byKey: [String: App], byID: [String: App])>

    init(apps: [AppConfig], group: LoopGroup, loopCount: Int, outlets: HubOutlets) {
        self.group = group
        self.loopCount = loopCount
        self.outlets = outlets
        var byKey: [String: App] = [:]
        var byID: [String: App] = [:]
        for config in apps {
            let app = App(config: config, group: group, loopCount: loopCount, outlets: outlets)
            byKey[config.key] = app
            byID[config.id] = app
        }
        state = Mutex((byKey, byID))
    }

    func app(key: String) -> App? { state.withLock { $0.byKey[key] } }
    func app(id: String) -> App? { state.withLock { $0.byID[id] } }
    public var all: [App] { state.withLock { Array($0.byID.values) } }

    /// Applies a new app list. An app keeps its identity (hub, connections) by id while its key,
    /// secret and organization stay the same, and gets its other settings replaced; a change of
    /// any of those three makes it another app (a new App replaces the old one, which counts as
    /// removed): its clients connected, or authorized their channels, for what is no longer there.
    /// Returns the apps that were removed and those that are now disabled, whose connections
    /// the caller closes.
    func reload(_ configs: [AppConfig]) -> (removed: [App], disabled: [App]) {
        state.withLock { current in
            var byKey: [String: App] = [:]
            var byID: [String: App] = [:]
            var disabled: [App] = []
            for config in configs {
                let app: App
                if let existing = current.byID[config.id], existing.isSameApp(as: config) {
                    if existing.config.enabled && !config.enabled { disabled.append(existing) }
                    existing.update(config)
                    app = existing
                } else {
                    app = App(config: config, group: group, loopCount: loopCount, outlets: outlets)
                }
                byKey[config.key] = app
                byID[config.id] = app
            }
            let removed = current.byID.values.filter { byID[$0.id] !== $0 }
            current = (byKey, byID)
            return (removed, disabled)
        }
    }
}
