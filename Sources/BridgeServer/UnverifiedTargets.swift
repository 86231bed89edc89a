import Bridge
import Synchronization
import Webhooks

/// Targets configured with `"tls_verify": false`, each said once as a warning: at start, and at
/// a reload for each one the reload adds (one removed and added again is said again).
final class UnverifiedTargets: Sendable {
    private struct Target: Hashable {
        let appID: String
        let url: String
    }

    private let known = Mutex<Set<Target>>([])

    /// The warning lines for the unverified targets among `apps` that were not there before.
    func newWarnings(_ apps: [WebhookApp]) -> [String] {
        let current = apps.flatMap { app in
            app.targets.filter { $0.tls == .unverified }.map { Target(appID: app.id, url: $0.url) }
        }
        let added = known.withLock { known in
            defer { known = Set(current) }
            return current.filter { !known.contains($0) }
        }
        return added.map {
            "app \($0.appID): webhooks to \($0.url) are sent with \"tls_verify\": false: the receiver's certificate "
                + "and host name are not checked, so anyone on the path can read or change them"
        }
    }

    func warn(about apps: [WebhookApp]) {
        newWarnings(apps).forEach { Log.warn($0) }
    }
}
