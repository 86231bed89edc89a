import System
/// The Pusher broker on a server: the apps, the `/app/{key}` WebSocket endpoint and the HTTP API,
/// plus the seed API and the admin API when organizations are set up.
public final class Broker: Sendable {
    public let apps: AppRegistry
    private let loops: LoopGroup

    /// What the seed and admin APIs need from the executable.
    public struct Organizations: Sendable {
        public let authority: SeedAuthority
        public let adminToken: String?
        /// Ids and keys of the config file's apps, which new apps must not take.
        public let reservedAppIDs: @Sendable () -> Set<String>
        /// Why an app's settings cannot run (checks the core cannot make, such as webhook targets).
        public let validateApp: @Sendable (AppConfig) -> String?
        /// Applies the store's apps to the running server after the admin API changed them.
        public let didChange: @Sendable () -> Void
        /// Events one organization may publish per second through the seed event API (403 past it).
        public var seedEventsPerSecond = 100

        public init(authority: SeedAuthority, adminToken: String?, reservedAppIDs: @escaping @Sendable () -> Set<String>,
                    validateApp: @escaping @Sendable (AppConfig) -> String?, didChange: @escaping @Sendable () -> Void) {
            self.authority = authority
            self.adminToken = adminToken
            self.reservedAppIDs = reservedAppIDs
            self.validateApp = validateApp
            self.didChange = didChange
        }
    }

    /// Adds the broker's routes; call before `server.start()`. `observer` hears every channel
    /// event (the webhooks); `cluster` links this node to the others and decides for the whole
    /// cluster (nil: a single node, whose `LocalAuthority` decides).
    public init(server: Server, apps configs: [AppConfig], observer: (any ChannelEventObserver)? = nil,
                cluster: (any ClusterAdapter)? = nil, organizations: Organizations? = nil) {
        loops = server.loops
        let outlets = HubOutlets(observer: observer, cluster: cluster)
        apps = AppRegistry(apps: configs, group: server.loops, loopCount: server.config.threads, outlets: outlets)
        let apps = self.apps
        outlets.authority.start(BrokerClusterNode(apps: apps))
        server.route("GET", "/app/:key", .webSocket(PusherService(apps: apps, seed: organizations?.authority)))
        PusherAPI(apps: apps).install(on: server)
        if let organizations {
            SeedAPI(apps: apps, authority: organizations.authority,
                    eventRate: PerKeyRateLimit(perSecond: organizations.seedEventsPerSecond)).install(on: server)
            AdminAPI(store: organizations.authority.store, adminToken: organizations.adminToken,
                     reservedAppIDs: organizations.reservedAppIDs, validateApp: organizations.validateApp,
                     didChange: organizations.didChange).install(on: server)
        }
    }

    /// Starts the once-a-second upkeep on every loop; call after `server.start()`.
    public func start() {
        let apps = self.apps
        for loop in loops.loops {
            loop.execute { loop in
                var due = 0.0
                loop.onTick { loop in
                    guard loop.seconds >= due else { return }
                    due = loop.seconds + 1
                    Broker.upkeep(apps, on: loop)
                }
            }
        }
    }

    /// Closes connections that did not authorize in time; loop 0 also flushes held-back
    /// subscription counts and expired cache entries.
    private static func upkeep(_ apps: AppRegistry, on loop: EventLoop) {
        let now = MonotonicClock.seconds
        for app in apps.all {
            for session in app.hub.shard(loop.index).takeUnauthorized(now: now) {
                session.fail(.unauthorized("Connection not authorized within timeout"))
            }
            if loop.index == 0 { app.hub.maintain() }
        }
    }

    /// Applies a new app list (SIGHUP): connections of removed apps close with 4001, of disabled apps with 4003.
    public func reload(_ configs: [AppConfig]) {
        let (removed, disabled) = apps.reload(configs)
        for app in removed {
            Log.info("app \(app.id) removed: closing its \(app.connectionCount) connections")
            app.hub.closeAll(with: .appNotFound("App \(app.id) no longer exists"))
        }
        for app in disabled {
            Log.info("app \(app.id) disabled: closing its \(app.connectionCount) connections")
            app.hub.closeAll(with: .appDisabled("App \(app.id) is disabled"))
        }
        Log.info("apps applied: \(configs.count)")
        closeRevokedSeedSessions()
    }

    /// Closes the seed-mode connections whose JWT the new organizations no longer honour (a
    /// rotated token, a deleted organization, or by now expired), rather than at their next act.
    private func closeRevokedSeedSessions() {
        for app in apps.all where app.config.organization != nil {
            app.hub.forEachShard { shard in
                for session in shard.allSessions { session.endIfSeedRevoked() }
            }
        }
    }
}
