import Foundation
import Support
import Synchronization
import System

/// From channel events to delivered webhooks, on one thread of its own:
///
///     emit (event loops, O(1)) → grace window → per-target filter → batch → outbox (disk) → dispatcher (libcurl)
///                                                                        ↑ acknowledged when delivered or dead-lettered
///
/// A webhook counts as emitted once it is in the outbox: a crash after that loses nothing, and
/// every entry still in the outbox at start is delivered again (at least once; receivers
/// de-duplicate by `X-Bridge-Webhook-Id`). Events still inside the grace window or a batching
/// window are in memory only.
public final class WebhookPipeline: Sendable {
    public struct Options: Sendable {
        /// How long `channel_vacated`/`member_removed` wait for their opposite (PROTOCOL.md §1.16).
        public var graceMs = 3_000
        public var outbox: Outbox.Options
        public var dispatcher = DispatcherOptions()
        public var deadLetterPath: String
        /// Past this many bytes of backlog (webhooks written and not yet delivered, plus events
        /// on their way to the outbox) client events are refused (their senders get an error);
        /// lifecycle events are still written, up to the outbox's own `maxBytes`.
        public var clientEventLimitBytes: Int
        /// Events taken but not yet written are in memory only: past this many bytes of them,
        /// client events are refused too, so a slow disk pushes back instead of piling them up.
        public var queueLimitBytes = 16 << 20
        /// The most backlog one app may hold (see `AppBacklogs`): past 4/5 of it its client events
        /// are refused, past all of it its webhooks are dropped, so that it cannot take the others' room.
        public var appShareBytes: Int
        /// Drops are logged at most once per app per this many milliseconds, with their count.
        public var dropLogIntervalMs: Int64 = 10_000
        /// Past this size the dead-letter file takes no more letters (see `DeadLetters`).
        public var deadLetterMaxBytes = 64 << 20
        /// Hears each webhook once it is delivered or given up on (app id, target URL, the events'
        /// JSON array, outcome), on the dispatcher thread: it must return quickly.
        public var onOutcome: (@Sendable (_ appID: String, _ url: String, _ eventsJSON: [UInt8], _ outcome: DeliveryOutcome) -> Void)?

        public init(dataDirectory: String) {
            outbox = Outbox.Options(directory: dataDirectory + "/outbox")
            deadLetterPath = dataDirectory + "/webhooks-dead-letter.jsonl"
            clientEventLimitBytes = outbox.maxBytes / 5 * 4
            appShareBytes = outbox.maxBytes / 2
        }
    }

    private struct State {
        var apps: [String: WebhookApp] = [:]
        var incoming: [(app: String, event: WebhookEvent)] = []
        var backlogs: AppBacklogs
        var stopping = false
        /// The last disk error and when (uptime ms), for `/ready`.
        var diskError: (message: String, atMs: Int64)?
    }

    private let options: Options
    private let state: Mutex<State>
    private let wake = DispatchSemaphore(value: 0)
    private let outbox: Outbox
    private let dispatcher: WebhookDispatcher
    private let deadLetters: DeadLetters
    private let log: @Sendable (String) -> Void
    /// Bytes of backlog, kept exact enough for the client-event bound: added when an event is
    /// taken and when a webhook is written, removed when the event is processed and when the
    /// webhook is acknowledged.
    private let backlogBytes = Atomic<Int>(0)
    /// The part of it still in `incoming`, not yet written.
    private let queuedBytes = Atomic<Int>(0)
    private let refusing = Atomic<Bool>(false)
    /// Whether the dead-letter file refused a letter for want of room (logged once per episode).
    private let deadLettersFull = Atomic<Bool>(false)
    /// With fsync on every append, the pipeline syncs once per batch of appends instead (group
    /// commit) and only then hands the webhooks to the dispatcher.
    private let groupCommit: Bool
    /// Webhooks handed to the dispatcher and not finished yet, by outbox id.
    private let inDelivery = Mutex<[UInt64: (stored: StoredWebhook, cost: Int)]>([:])
    private let finished = DispatchSemaphore(value: 0)

    public init(options: Options, apps: [WebhookApp], log: @escaping @Sendable (String) -> Void) throws {
        self.options = options
        self.log = log
        state = Mutex(State(apps: Dictionary(apps.map { ($0.id, $0) }, uniquingKeysWith: { $1 }),
                            backlogs: AppBacklogs(shareBytes: options.appShareBytes, logIntervalMs: options.dropLogIntervalMs)))
        var outboxOptions = options.outbox
        groupCommit = outboxOptions.sync == .always
        if groupCommit { outboxOptions.sync = .interval(milliseconds: 1_000) }
        outbox = try Outbox(options: outboxOptions, log: log)
        deadLetters = DeadLetters(path: options.deadLetterPath, maxBytes: options.deadLetterMaxBytes)
        let outcomes = OutcomeSink()
        dispatcher = WebhookDispatcher(options: options.dispatcher, log: log) { delivery, outcome in
            outcomes.pipeline?.finished(delivery, outcome)
        }
        outcomes.pipeline = self
    }

    /// Starts the threads and redelivers what a previous run left in the outbox.
    public func start() {
        dispatcher.start()
        let pending = outbox.pendingEntries()
        if !pending.isEmpty { log("webhooks: redelivering \(pending.count) webhooks left in the outbox") }
        for entry in pending {
            guard let stored = StoredWebhook(decoding: entry.payload) else {
                log("webhooks: outbox entry \(entry.id) is not a webhook; dropping it")
                try? outbox.acknowledge(entry.id)
                continue
            }
            submit(stored, id: entry.id, cost: entry.payload.count)
        }
        let thread = Thread { [self] in run() }
        thread.name = "bridge-webhooks"
        thread.start()
    }

    /// Hands an event over; O(1), called on event loops. False when a client event is refused
    /// because the backlog, or its app's share of it, is full (the sender is told). Lifecycle
    /// events are taken while their app is within its share, else dropped (counted and logged).
    public func emit(app: String, _ event: WebhookEvent) -> Bool {
        let cost = event.estimatedBytes
        let isClientEvent = event.kind == .clientEvent
        let backlog = backlogBytes.add(cost, ordering: .relaxed).newValue
        let queued = queuedBytes.add(cost, ordering: .relaxed).newValue
        let (verdict, wasEmpty) = state.withLock { state -> (AppBacklogs.Verdict, Bool) in
            if isClientEvent && refusesClientEvents(backlog: backlog, queued: queued) {
                state.backlogs.recordRefusal(app: app)
                return (.refuse, false)
            }
            let verdict = state.backlogs.admit(app: app, cost: cost, isClientEvent: isClientEvent)
            guard verdict == .accept else { return (verdict, false) }
            state.incoming.append((app, event))
            return (.accept, state.incoming.count == 1)
        }
        guard verdict == .accept else {
            backlogBytes.subtract(cost, ordering: .relaxed)
            queuedBytes.subtract(cost, ordering: .relaxed)
            return verdict == .drop
        }
        if wasEmpty { wake.signal() }
        return true
    }

    /// Past either bound client events are refused, and stay refused until the backlog is back
    /// under 7/8 of it, so that a sender sees one refusal run rather than a flapping bound.
    private func refusesClientEvents(backlog: Int, queued: Int) -> Bool {
        let over = backlog > options.clientEventLimitBytes || queued > options.queueLimitBytes
        if over {
            refusing.store(true, ordering: .relaxed)
            return true
        }
        guard refusing.load(ordering: .relaxed) else { return false }
        let recovered = backlog <= options.clientEventLimitBytes / 8 * 7 && queued <= options.queueLimitBytes / 8 * 7
        if recovered { refusing.store(false, ordering: .relaxed) }
        return !recovered
    }

    /// Whether an app has any webhook target, so that callers can skip building events nobody wants.
    public func wantsEvents(app: String) -> Bool {
        state.withLock { !($0.apps[app]?.targets.isEmpty ?? true) }
    }

    /// New app settings (SIGHUP). Webhooks already in the outbox keep their URL; they are
    /// signed with the app's current secret. One already handed to the dispatcher keeps the
    /// headers and TLS setting it was handed over with; the next start reads the current ones.
    public func configure(apps: [WebhookApp]) {
        state.withLock { state in
            state.apps = Dictionary(apps.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
            state.backlogs.prune(keeping: Set(state.apps.keys))
        }
    }

    /// A write failure keeps `/ready` at 503 this long, so that a failure between two probes
    /// is seen even when the next write (maybe to a fresh segment) succeeds.
    static let problemHoldMs: Int64 = 30_000

    /// Nil while webhooks can be written; else why not (for `/ready`).
    public var problem: String? {
        let error = state.withLock { $0.diskError }
        guard let error, MonotonicClock.milliseconds - error.atMs < Self.problemHoldMs else { return nil }
        return error.message
    }

    /// `{"pending":…,"in_flight":…,"waiting":…,"dead":…,"outbox_bytes":…,"app_share_bytes":…,"apps":{…}}`:
    /// webhooks not yet delivered (all in the outbox), of which in flight now and waiting (first
    /// attempt queued or retry scheduled), dead letters on file, the outbox's size on disk, each
    /// app's share, and per app its backlog bytes, webhooks dropped and client events refused.
    /// `onlyApp` limits `apps` to that one app (for an app's own credential).
    public func statusJSON(onlyApp: String? = nil) -> String {
        let dead = (try? deadLetters.read().letters.count) ?? 0
        return JSONWriter.object { json in
            json.field("pending", outbox.pendingCount)
            json.field("in_flight", dispatcher.inFlightCount)
            json.field("waiting", dispatcher.queuedCount)
            json.field("dead", dead)
            json.field("outbox_bytes", outbox.diskBytes)
            json.field("app_share_bytes", options.appShareBytes)
            state.withLock { state in
                let ids = onlyApp.map { [$0] } ?? Set(state.apps.keys).union(state.backlogs.accounts.keys).sorted()
                json.objectField("apps") { for id in ids { $0.field(id) { state.backlogs.write(of: id, to: &$0) } } }
            }
        }.text
    }

    /// Flushes held and batched events into the outbox, gives in-flight deliveries up to
    /// `graceMs`, and closes the outbox. What is left is delivered after the next start.
    public func stop(graceMs: Int) {
        state.withLock { $0.stopping = true }
        wake.signal()
        finished.wait()
        dispatcher.stop(graceMs: graceMs)
        outbox.close()
    }

    // MARK: The pipeline thread

    private struct Batch {
        var events: [String] = []
        /// The backlog cost of its events, carried over to the webhook they become.
        var cost = 0
        var deadlineMs: Int64
    }

    private func run() {
        var grace = GraceWindow(delayMs: Int64(options.graceMs))
        var batches: [String: Batch] = [:]
        while true {
            let now = MonotonicClock.milliseconds
            let next = [grace.nextDueMs, batches.values.map(\.deadlineMs).min()].compactMap { $0 }.min()
            let timeout: DispatchTime = next.map { .now() + .milliseconds(Int(max(0, $0 - now))) } ?? .now() + .seconds(1)
            _ = wake.wait(timeout: timeout)

            let (incoming, apps, stopping) = state.withLock { state in
                defer { state.incoming.removeAll(keepingCapacity: true) }
                return (state.incoming, state.apps, state.stopping)
            }
            let nowMs = MonotonicClock.milliseconds
            var written: [Written] = []
            for (appID, event) in incoming {
                if let passed = grace.offer(event, app: appID, nowMs: nowMs) {
                    route(passed, app: appID, apps: apps, batches: &batches, written: &written, nowMs: nowMs)
                }
            }
            // On stop, departures are not held back any longer: they are what happened.
            for (appID, event) in grace.takeDue(nowMs: stopping ? .max : nowMs) {
                route(event, app: appID, apps: apps, batches: &batches, written: &written, nowMs: nowMs)
            }
            for (key, batch) in batches where stopping || batch.deadlineMs <= nowMs {
                batches[key] = nil
                write(batch.events, cost: batch.cost, key: key, written: &written)
            }
            if groupCommit && !written.isEmpty {
                do { try outbox.sync() } catch { recordDiskError(error) }
            }
            for entry in written { submit(entry.stored, id: entry.id, cost: entry.cost) }
            let taken = incoming.reduce(0) { $0 + $1.event.estimatedBytes }
            queuedBytes.subtract(taken, ordering: .relaxed)
            backlogBytes.subtract(taken, ordering: .relaxed)
            let dropReports = state.withLock { state in
                for (appID, event) in incoming { state.backlogs.release(app: appID, cost: event.estimatedBytes) }
                return state.backlogs.dueLogLines(nowMs: nowMs)
            }
            dropReports.forEach(log)
            if stopping {
                finished.signal()
                return
            }
        }
    }

    /// Sends the event to each target of its app that wants it: at once, or into the target's batch.
    private func route(_ event: WebhookEvent, app appID: String, apps: [String: WebhookApp],
                       batches: inout [String: Batch], written: inout [Written], nowMs: Int64) {
        guard let app = apps[appID] else { return }
        for target in app.targets where target.accepts(event) {
            let key = appID + "\u{0}" + target.url
            guard let batching = target.batching else {
                write([event.json], cost: event.estimatedBytes, key: key, written: &written)
                continue
            }
            batches[key, default: Batch(deadlineMs: nowMs + Int64(batching.windowMs))].events.append(event.json)
            batches[key]!.cost += event.estimatedBytes
            if batches[key]!.events.count >= batching.maxEvents {
                let batch = batches.removeValue(forKey: key)!
                write(batch.events, cost: batch.cost, key: key, written: &written)
            }
        }
    }

    /// Appends one webhook to the outbox; it goes to the dispatcher once this turn's appends are durable.
    /// A webhook in the outbox, waiting for this turn's sync before it is handed to delivery.
    private struct Written {
        let stored: StoredWebhook
        let id: UInt64
        let cost: Int
    }

    private func write(_ events: [String], cost: Int, key: String, written: inout [Written]) {
        let parts = key.split(separator: "\u{0}", maxSplits: 1).map(String.init)
        let stored = StoredWebhook(appID: parts[0], url: parts[1], createdAtMs: Self.unixMs(),
                                   eventsJSON: JSONWriter.array { for event in events { $0.raw(event) } }.bytes)
        do {
            written.append(Written(stored: stored, id: try outbox.append(stored.encoded), cost: cost))
        } catch {
            // Full or unwritable: the webhook is lost; it is counted, and logged at a bounded rate.
            state.withLock { $0.backlogs.recordDrop(app: parts[0], reason: "cannot write to the outbox: \(error)") }
            recordDiskError(error)
        }
    }

    /// Only a disk that cannot be written makes the server unready; a full outbox is a backlog.
    private func recordDiskError(_ error: Outbox.OutboxError) {
        if case .io = error {
            state.withLock { $0.diskError = ("webhook outbox: \(error)", MonotonicClock.milliseconds) }
        }
    }

    private func submit(_ stored: StoredWebhook, id: UInt64, cost: Int) {
        let app = state.withLock { $0.apps[stored.appID] }
        guard let app else {
            deadLetter(stored, id: id, attempts: 0, error: "app \(stored.appID) no longer exists")
            return
        }
        let target = app.targets.first { $0.url == stored.url } ?? WebhookTarget(url: stored.url)
        inDelivery.withLock { $0[id] = (stored, cost) }
        backlogBytes.add(cost, ordering: .relaxed)
        state.withLock { $0.backlogs.add(app: stored.appID, cost: cost) }
        dispatcher.submit(WebhookDelivery(
            id: String(id), target: stored.url, url: stored.url, appKey: app.key, secret: app.secret,
            eventsJSON: stored.eventsJSON, createdAtMs: stored.createdAtMs,
            stampTimeAtDelivery: target.stampTimeAtDelivery,
            extraHeaders: target.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, tls: target.tls))
    }

    /// The dispatcher's verdict (on its thread): delivered webhooks leave the outbox; failed
    /// ones go to the dead-letter file first.
    private func finished(_ delivery: WebhookDelivery, _ outcome: DeliveryOutcome) {
        guard let id = UInt64(delivery.id), let (stored, cost) = inDelivery.withLock({ $0.removeValue(forKey: id) }) else { return }
        backlogBytes.subtract(cost, ordering: .relaxed)
        state.withLock { $0.backlogs.release(app: stored.appID, cost: cost) }
        options.onOutcome?(stored.appID, stored.url, stored.eventsJSON, outcome)
        if case .failed(let error, let attempts) = outcome {
            deadLetter(stored, id: id, attempts: attempts, error: error)
            return
        }
        do { try outbox.acknowledge(id) } catch { log("webhooks: cannot acknowledge webhook \(id): \(error)") }
    }

    private func deadLetter(_ stored: StoredWebhook, id: UInt64, attempts: Int, error: String) {
        log("webhooks: webhook \(id) to \(stored.url) failed for good after \(attempts) attempts: \(error)")
        do {
            try deadLetters.append(DeadLetters.Letter(
                id: String(id), appID: stored.appID, url: stored.url, createdAtMs: stored.createdAtMs,
                failedAtMs: Self.unixMs(), attempts: attempts, error: error,
                eventsJSON: String(decoding: stored.eventsJSON, as: UTF8.self)))
            deadLettersFull.store(false, ordering: .relaxed)
            try outbox.acknowledge(id)
        } catch let error as DeadLetterError where error.isFull {
            // Kept in the outbox, like any letter that cannot be written. Said once until the file has room again.
            if !deadLettersFull.exchange(true, ordering: .relaxed) {
                log("webhooks: the dead-letter file \(deadLetters.path) is full (\(deadLetters.maxBytes) bytes, "
                    + "--webhook-dead-letter-bytes): failed webhooks stay in the outbox and are retried after the next start; "
                    + "run `bridge webhooks replay` or move the file away to make room")
            }
        } catch {
            // Kept in the outbox: it is retried after the next start rather than lost.
            log("webhooks: cannot write the dead letter for webhook \(id): \(error)")
        }
    }

    static func unixMs() -> Int64 {
        Int64(Date().timeIntervalSince1970 * 1000)
    }
}

/// Lets the dispatcher's callback reach the pipeline that owns the dispatcher.
private final class OutcomeSink: @unchecked Sendable {
    weak var pipeline: WebhookPipeline?
}
