import Support

/// Each app's part of the webhook backlog, so that one app cannot take the room of the others.
///
/// Every app may hold at most `shareBytes` of backlog (a fixed fraction of the outbox bound, the
/// same for every app). Past 4/5 of it the app's client events are refused (until it is back
/// under 7/8 of that, like the global bound), and past all of it the app's lifecycle webhooks are
/// dropped. So an app that floods fills its own share only; the others keep theirs.
///
/// Drops are counted (for `/webhooks/status`) and reported in the log at most once per app per
/// `logIntervalMs`, with the number dropped since the previous line, so that a flood of drops
/// cannot become a flood of log lines.
struct AppBacklogs {
    struct Account {
        /// Backlog bytes of this app: events taken and not yet written, webhooks written and not yet finished.
        var bytes = 0
        var refusingClientEvents = false
        /// Webhooks lost since the start: lifecycle events over the share, writes the outbox refused.
        var dropped = 0
        /// Client events refused to their sender since the start.
        var refused = 0
        var droppedSinceLog = 0
        var lastReason = ""
        var lastLogMs: Int64?
    }

    enum Verdict: Equatable {
        case accept
        /// A client event: its sender is told (4301).
        case refuse
        /// A lifecycle event: nobody can be told; it is counted and logged.
        case drop
    }

    let shareBytes: Int
    let logIntervalMs: Int64
    private(set) var accounts: [String: Account] = [:]

    init(shareBytes: Int, logIntervalMs: Int64) {
        self.shareBytes = max(1, shareBytes)
        self.logIntervalMs = logIntervalMs
    }

    private var clientEventLimit: Int { shareBytes / 5 * 4 }

    /// Takes `cost` bytes for an app's new event, or says why not.
    mutating func admit(app: String, cost: Int, isClientEvent: Bool) -> Verdict {
        var account = accounts[app, default: Account()]
        defer { accounts[app] = account }
        let after = account.bytes.addingReportingOverflow(cost)
        let bytes = after.overflow ? Int.max : after.partialValue
        if isClientEvent {
            if bytes > clientEventLimit {
                account.refusingClientEvents = true
            } else if account.refusingClientEvents && bytes <= clientEventLimit / 8 * 7 {
                account.refusingClientEvents = false
            }
            if account.refusingClientEvents {
                account.refused += 1
                return .refuse
            }
        } else if bytes > shareBytes {
            account.dropped += 1
            account.droppedSinceLog += 1
            account.lastReason = "its backlog is past its share of \(shareBytes) bytes"
            return .drop
        }
        account.bytes = bytes
        return .accept
    }

    /// Counts a client event refused by the global bound.
    mutating func recordRefusal(app: String) {
        accounts[app, default: Account()].refused += 1
    }

    /// Counts bytes that are already the app's (a webhook handed to delivery again at start).
    mutating func add(app: String, cost: Int) {
        accounts[app, default: Account()].bytes += cost
    }

    mutating func release(app: String, cost: Int) {
        guard var account = accounts[app] else { return }
        account.bytes = max(0, account.bytes - cost)
        accounts[app] = account
    }

    /// A webhook of the app that was lost after it was taken (the outbox refused it).
    mutating func recordDrop(app: String, reason: String) {
        var account = accounts[app, default: Account()]
        account.dropped += 1
        account.droppedSinceLog += 1
        account.lastReason = reason
        accounts[app] = account
    }

    /// The log lines due now: one per app with drops not yet reported whose last line is at
    /// least `logIntervalMs` old.
    mutating func dueLogLines(nowMs: Int64) -> [String] {
        var lines: [String] = []
        for (app, account) in accounts where account.droppedSinceLog > 0 {
            if let last = account.lastLogMs, nowMs - last < logIntervalMs { continue }
            let since = account.lastLogMs.map { "in the last \((nowMs - $0) / 1000) s" } ?? "since the start"
            lines.append("webhooks: app \(app): dropped \(account.droppedSinceLog) webhooks \(since) (\(account.lastReason)); "
                         + "\(account.dropped) dropped in all")
            accounts[app]?.droppedSinceLog = 0
            accounts[app]?.lastLogMs = nowMs
        }
        return lines.sorted()
    }

    /// Forgets apps that are gone once nothing of theirs is left in the backlog.
    mutating func prune(keeping apps: Set<String>) {
        accounts = accounts.filter { apps.contains($0.key) || $0.value.bytes > 0 }
    }

    /// `{"backlog_bytes":…,"dropped":…,"refused":…}` for one app (zeros for an app never seen).
    func write(of app: String, to json: inout JSONWriter) {
        let account = accounts[app] ?? Account()
        json.object {
            $0.field("backlog_bytes", account.bytes)
            $0.field("dropped", account.dropped)
            $0.field("refused", account.refused)
        }
    }
}
