import Bridge
import Glibc
import Redis
import RedisCluster
import Webhooks

// `bridge serve [flags]`: parse the command line, start the broker and its webhooks, wait for signals.
// `bridge webhooks replay [flags]`: send the dead-lettered webhooks again.
// `bridge orgs …`, `bridge apps …`: manage organizations and their apps (OrganizationCommands).
let arguments = Array(CommandLine.arguments.dropFirst())

func settings(from arguments: [String]) -> ServeSettings {
    do {
        guard let parsed = try CLI.parseServe(arguments, environment: CLI.environment()) else {
            print(CLI.serveUsage)
            exit(0)
        }
        return parsed
    } catch {
        CLI.fail(error.message)
    }
}

switch arguments.first {
case nil, "-h", "--help", "help":
    print(CLI.usage)
    print(CLI.serveUsage)
case "orgs", "apps":
    exit(OrganizationCommands.run(arguments[0], Array(arguments.dropFirst())))
case "webhooks":
    let rest = Array(arguments.dropFirst(2))
    switch arguments.dropFirst().first {
    case "replay": exit(Replay.run(settings(from: rest)))
    case "status": exit(WebhookCommands.status(settings(from: rest)))
    case "verify": exit(WebhookCommands.verify(rest))
    default: CLI.fail("unknown webhooks command\n\(WebhookCommands.usage)")
    }
case "serve":
    let serveArguments = Array(arguments.dropFirst())
    let settings = settings(from: serveArguments)
    let sources: AppSources
    let authority: SeedAuthority
    do {
        let store = try OrganizationStore(dataDir: settings.server.dataDir)
        sources = AppSources(configApps: settings.apps, store: store)
        authority = SeedAuthority(store: store, key: try SeedAuthority.key(configured: settings.seed.jwtSecret, dataDir: settings.server.dataDir),
                                  ttl: settings.seed.jwtTTLSeconds)
    } catch let error as OrganizationError {
        CLI.fail(error.message, status: 1)
    } catch {
        CLI.fail("cannot set up the JWT key in \(settings.server.dataDir): \(error)", status: 1)
    }
    // The store's apps have webhook targets too (`bridge apps create --webhook`): from the start,
    // not only after the store's first change.
    let webhooks: WebhookPipeline
    let webhookOutcomes = WebhookOutcomeRelay()
    let unverifiedTargets = UnverifiedTargets()
    do {
        let webhookApps = try WebhookSettings.apps(sources.all)
        webhooks = try WebhookPipeline(options: WebhookSettings.pipelineOptions(settings, outcomes: webhookOutcomes),
                                       apps: webhookApps, log: { Log.info($0) })
        unverifiedTargets.warn(about: webhookApps)
    } catch {
        Log.error("cannot open the webhook outbox in \(settings.server.dataDir): \(error)")
        exit(1)
    }
    let server = Server(config: settings.server)
    var organizations = Broker.Organizations(authority: authority, adminToken: settings.seed.adminToken,
                                             reservedAppIDs: { sources.reservedIDs }, validateApp: WebhookSettings.problem(in:),
                                             didChange: { sources.apply() })
    organizations.seedEventsPerSecond = settings.seed.eventsPerSecond
    var cluster: RedisClusterAdapter?
    if settings.cluster.adapter == .redis {
        do {
            cluster = try RedisClusterAdapter(url: try RedisURL(settings.cluster.redisURL), tlsCAFile: settings.cluster.redisCAFile,
                                              prefix: settings.cluster.redisPrefix, leaseSeconds: settings.cluster.leaseSeconds,
                                              graceMs: Int(settings.webhooks.graceSeconds * 1000),
                                              log: { Log.info($0) })
        } catch {
            CLI.fail("cannot start the Redis adapter: \(error)", status: 1)
        }
        server.addReadinessCheck { [cluster] in cluster?.problem }
    }
    let broker = Broker(server: server, apps: sources.all, observer: WebhookForwarder(pipeline: webhooks),
                        cluster: cluster, organizations: organizations)
    webhookOutcomes.attach(broker)
    let console = ConsoleAPI(broker: broker, adminToken: settings.seed.adminToken)
    console.install(on: server)
    sources.onApply { apps in
        broker.reload(apps)
        do throws(CLIError) {
            let webhookApps = try WebhookSettings.apps(apps)
            webhooks.configure(apps: webhookApps)
            unverifiedTargets.warn(about: webhookApps)
        } catch {
            Log.error("webhooks not reconfigured: \(error.message)")
        }
    }
    server.addReadinessCheck { webhooks.problem }
    // The console's credentials: the admin token sees every app's counters, an app's key:secret its own.
    server.route("GET", "/webhooks/status", .http { request, _ in
        switch console.caller(of: request) {
        case nil: return ConsoleAPI.unauthorizedResponse
        case .admin: return .json(200, webhooks.statusJSON())
        case .app(let id): return .json(200, webhooks.statusJSON(onlyApp: id))
        }
    })
    do {
        try StaticRoutes.register(on: server)
        try server.start()
    } catch {
        Log.error("cannot start: \(error)")
        exit(1)
    }
    broker.start()
    webhooks.start()
    sources.watchStore(every: 1)
    server.watchTLSFiles(every: 2)
    if let cluster {
        let url = cluster.url
        let tls = url.usesTLS ? " over TLS" + (settings.cluster.redisCAFile.map { " (CA file \($0))" } ?? "") : ""
        Log.info("cluster: node \(cluster.nodeID) through redis \(url.host):\(url.port)/\(url.database)\(tls) prefix \(settings.cluster.redisPrefix)")
    }
    let directory = sources.store.directory
    Log.info("organizations: \(directory.organizations.count) with \(directory.appConfigs.count) apps (\(sources.store.path))"
             + (settings.seed.adminToken == nil ? "; admin API off" : "; admin API on"))
    // Anyone who can reach the port and knows the documented default can sign API calls as that app.
    if !CLI.isLoopback(host: settings.server.host) {
        for app in settings.apps where app.secret == AppConfig.defaultApp.secret {
            Log.warn("app \(app.id) uses the well-known default secret \"\(app.secret)\" on \(settings.server.host), "
                     + "which is not a loopback address: anyone who reaches the port can publish as this app; "
                     + "set --app-secret (or the app's secret in the config file)")
        }
    }
    for app in settings.apps {
        let secret = app == AppConfig.defaultApp ? " secret=\(app.secret)" : ""
        Log.info("app \(app.id) (\(app.name)): key=\(app.key)\(secret)\(app.enabled ? "" : " disabled")"
                 + (app.webhooks.isEmpty ? "" : " webhooks=\(app.webhooks.count)"))
    }
    server.onReload = {
        // The same sources as at start: flags, environment, the config file as it is now.
        do throws(CLIError) {
            guard let reloaded = try CLI.parseServe(serveArguments, environment: CLI.environment()) else { return }
            sources.replaceConfigApps(reloaded.apps)
            if let tls = reloaded.server.tls { server.reloadTLS(tls) }
        } catch {
            Log.error("reload failed, keeping the current config: \(error.message)")
        }
    }
    server.runUntilSignalled()
    // The drained clients' departures are recorded; whatever is left of this node's share goes now.
    cluster?.stop()
    // The drain's vacated and member_removed events are in the pipeline now: write them out.
    webhooks.stop(graceMs: 2_000)
    // Everything that matters is on disk. _exit skips the atexit handlers (libcurl's and
    // OpenSSL's clean-up), which must not run under a loop or delivery thread still winding down.
    fflush(nil)
    _exit(0)
default:
    CLI.fail("unknown command \"\(arguments[0])\" (try `bridge --help`)")
}
