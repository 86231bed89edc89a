import Bridge
import Foundation
import Synchronization

/// The apps the server runs: those of the config file (replaced on SIGHUP) and those of the
/// organizations store (changed by the admin API or the CLI), applied together.
final class AppSources: Sendable {
    let store: OrganizationStore
    private let configApps: Mutex<[AppConfig]>
    /// Receives the whole app list after every change; set once the broker exists.
    private let applier = Mutex<(@Sendable ([AppConfig]) -> Void)?>(nil)

    init(configApps: [AppConfig], store: OrganizationStore) {
        self.configApps = Mutex(configApps)
        self.store = store
    }

    /// Ids and keys of the config file's apps: new store apps must not take them.
    var reservedIDs: Set<String> {
        configApps.withLock { Set($0.flatMap { [$0.id, $0.key] }) }
    }

    /// Config apps first; a store app whose id or key a config app already uses is left out (and logged).
    var all: [AppConfig] {
        let fromConfig = configApps.withLock { $0 }
        let reserved = reservedIDs
        var apps = fromConfig
        for app in store.directory.appConfigs {
            if reserved.contains(app.id) || reserved.contains(app.key) {
                Log.error("app \(app.id) of organization \(app.organization ?? "") is left out: the config file uses its id or key")
                continue
            }
            apps.append(app)
        }
        return apps
    }

    func onApply(_ body: @escaping @Sendable ([AppConfig]) -> Void) {
        applier.withLock { $0 = body }
    }

    func replaceConfigApps(_ apps: [AppConfig]) {
        configApps.withLock { $0 = apps }
        apply()
    }

    func apply() {
        let apps = all
        applier.withLock { $0 }?(apps)
    }

    /// Polls the store file every `interval` seconds on a thread of its own and applies changes
    /// made by other processes (the CLI).
    func watchStore(every interval: Double) {
        Thread.detachNewThread { [self] in
            while true {
                Thread.sleep(forTimeInterval: interval)
                do throws(OrganizationError) {
                    if try store.reloadIfChanged() {
                        Log.info("organizations changed on disk: applying")
                        apply()
                    }
                } catch {
                    Log.error("\(error.message); keeping the organizations loaded before")
                }
            }
        }
    }
}
