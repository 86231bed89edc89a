import Bridge
import Foundation
import Synchronization
import Webhooks

/// `bridge webhooks replay [serve options]`: sends every dead-lettered webhook again, with the
/// apps' current keys and secrets and `time_ms` set to now (the original is past the 5 minutes
/// the Python library accepts). What fails again stays in the file, with its new error.
enum Replay {
    static func run(_ settings: ServeSettings) -> Int32 {
        let letters = DeadLetters(path: WebhookSettings.pipelineOptions(settings).deadLetterPath)
        let read: (letters: [DeadLetters.Letter], skipped: Int)
        do { read = try letters.read() } catch {
            print("bridge: cannot read \(letters.path): \(error)")
            return 1
        }
        if read.skipped > 0 { print("skipping \(read.skipped) unreadable lines of \(letters.path)") }
        guard !read.letters.isEmpty else {
            print("no dead letters in \(letters.path)")
            return 0
        }
        // The config file's apps and the organizations' (a missing or unreadable store adds none).
        let storeApps = (try? OrganizationStore(dataDir: settings.server.dataDir))?.directory.appConfigs ?? []
        let configured = (try? WebhookSettings.apps(settings.apps + storeApps)) ?? []
        let apps = Dictionary(configured.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })

        let failed = Mutex<[DeadLetters.Letter]>([])
        let done = DispatchSemaphore(value: 0)
        let byID = Dictionary(read.letters.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
        var options = WebhookSettings.dispatcherOptions(settings.webhooks)
        options.maxAgeMs = Int64(options.requestTimeoutMs) * 4  // a few attempts, then report
        let dispatcher = WebhookDispatcher(options: options) { delivery, outcome in
            if case .failed(let error, let attempts) = outcome, var letter = byID[delivery.id] {
                letter.error = error
                letter.attempts += attempts
                letter.failedAtMs = Int64(Date().timeIntervalSince1970 * 1000)
                failed.withLock { $0.append(letter) }
            }
            done.signal()
        }
        dispatcher.start()
        var submitted = 0
        for letter in read.letters {
            guard let app = apps[letter.appID] else {
                var kept = letter
                kept.error = "app \(letter.appID) is not in the configuration"
                failed.withLock { $0.append(kept) }
                continue
            }
            let target = app.targets.first { $0.url == letter.url }
            dispatcher.submit(WebhookDelivery(
                id: letter.id, target: letter.url, url: letter.url, appKey: app.key, secret: app.secret,
                eventsJSON: Array(letter.eventsJSON.utf8), createdAtMs: letter.createdAtMs, stampTimeAtDelivery: true,
                extraHeaders: (target?.headers ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                tls: target?.tls ?? .systemTrust))
            submitted += 1
        }
        for _ in 0..<submitted { done.wait() }
        dispatcher.stop(graceMs: 0)

        let remaining = failed.withLock { $0 }
        do { try letters.replace(with: remaining) } catch {
            print("bridge: cannot rewrite \(letters.path): \(error)")
            return 1
        }
        print("replayed \(read.letters.count) webhooks: \(read.letters.count - remaining.count) delivered, \(remaining.count) still failing")
        return remaining.isEmpty ? 0 : 1
    }
}
