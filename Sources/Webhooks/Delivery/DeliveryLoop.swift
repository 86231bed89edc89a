import CCurl
import Glibc
import Support
import Synchronization
import System

/// The dispatcher thread: one libcurl multi handle driven by `curl_multi_poll`,
/// per-target queues of waiting deliveries, and a schedule of retries.
/// Everything here belongs to that thread; other threads reach it only
/// through the inbox, and wake it with `curl_multi_wakeup`.
///
/// Each turn of the loop: let curl work, take new submissions, collect
/// finished transfers and decide their fate (done, failed, retry later), move
/// retries that came due into their target's queue, start what the caps
/// allow, then sleep in `curl_multi_poll` until a socket is ready, curl's
/// own timer fires, the next retry is due, or another thread wakes us.
final class DeliveryLoop {
    /// A delivery between attempts.
    struct Job {
        var delivery: WebhookDelivery
        var attempts = 0
        var lastError = ""
    }

    /// One target's waiting deliveries and running transfers. Retries that
    /// came due go before first attempts; first attempts keep submission order.
    final class TargetQueue {
        var firstAttempts = FIFO<Job>()
        var dueRetries = FIFO<Job>()
        var inFlight = 0
        /// Whether the target's name is in `runnable`.
        var isRunnable = false

        var hasWaitingJobs: Bool { !firstAttempts.isEmpty || !dueRetries.isEmpty }

        func popNext() -> Job? {
            dueRetries.popFirst() ?? firstAttempts.popFirst()
        }
    }

    private struct RunningAttempt {
        let job: Job
        let transfer: TransferHandle
    }

    private let options: DispatcherOptions
    private let onOutcome: @Sendable (WebhookDelivery, DeliveryOutcome) -> Void
    private let log: (@Sendable (String) -> Void)?
    private var retryLog: RetryLog
    private let inbox: DispatcherInbox
    private let policy: RetryPolicy
    private let maxInFlight: Int
    private let maxInFlightPerTarget: Int
    private let multi: UnsafeMutableRawPointer

    private var targets: [String: TargetQueue] = [:]
    /// Targets with a waiting job and a free slot, served round-robin so that
    /// one busy target cannot take every global slot while others wait.
    private var runnable = FIFO<String>()
    private var retries = RetrySchedule<Job>()
    /// Keyed by the easy handle curl reports back when a transfer finishes.
    private var running: [UnsafeMutableRawPointer: RunningAttempt] = [:]
    /// Easy handles between transfers, reused to save their set-up.
    private var idleTransfers: [TransferHandle] = []
    private var isStopping = false
    private var random = SystemRandomNumberGenerator()

    init(options: DispatcherOptions, onOutcome: @escaping @Sendable (WebhookDelivery, DeliveryOutcome) -> Void,
         log: (@Sendable (String) -> Void)?, inbox: DispatcherInbox) {
        self.options = options
        self.onOutcome = onOutcome
        self.log = log
        retryLog = RetryLog(intervalMs: options.retryLogIntervalMs)
        self.inbox = inbox
        policy = RetryPolicy(options)
        maxInFlight = max(1, options.maxInFlight)
        maxInFlightPerTarget = max(1, min(options.maxInFlightPerTarget, maxInFlight))
        guard TransferHandle.globalInitResult == CURLE_OK, let multi = curl_multi_init() else {
            fatalError("libcurl could not be initialised for webhook delivery")
        }
        self.multi = multi
        // Keep an idle connection per possible transfer. Left alone, curl sizes
        // the cache from the number of handles currently added, which drops as
        // transfers finish and would close connections we are about to reuse.
        _ = bridge_curl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, maxInFlight)
        let wakeUp = MultiWakeUp(multi: multi)
        inbox.state.withLock { $0.wakeUp = wakeUp }
    }

    func run() {
        while true {
            var stillRunning: Int32 = 0
            _ = curl_multi_perform(multi, &stillRunning)
            let (submitted, stopDeadlineMs) = takeFromInbox()
            isStopping = stopDeadlineMs != nil
            collectFinishedTransfers()
            // Accepted before any stop: first attempts still start while stopping (the last
            // departures a node flushes as it shuts down); retries wait for the next start.
            for delivery in submitted {
                enqueueFirstAttempt(Job(delivery: delivery))
            }
            if stopDeadlineMs == nil { releaseDueRetries() }
            startTransfers()
            if let stopDeadlineMs, running.isEmpty || MonotonicClock.milliseconds >= stopDeadlineMs { break }
            // New transfers set curl's timer to zero, so this returns at once when there are any.
            if curl_multi_poll(multi, nil, 0, pollTimeoutMs(stopDeadlineMs: stopDeadlineMs), nil) != CURLM_OK {
                usleep(10_000)  // Not expected; keeps a broken multi handle from spinning the thread.
            }
        }
        shutDown()
    }

    // MARK: Queues

    private func takeFromInbox() -> ([WebhookDelivery], Int64?) {
        inbox.state.withLock { state in
            var taken: [WebhookDelivery] = []
            swap(&taken, &state.submitted)
            return (taken, state.stopDeadlineMs)
        }
    }

    private func queue(for name: String) -> TargetQueue {
        if let target = targets[name] { return target }
        let target = TargetQueue()
        targets[name] = target
        return target
    }

    private func enqueueFirstAttempt(_ job: Job) {
        let name = job.delivery.target
        let target = queue(for: name)
        target.firstAttempts.append(job)
        markRunnableIfReady(name, target)
    }

    private func releaseDueRetries() {
        let now = MonotonicClock.milliseconds
        while let job = retries.popDue(nowMs: now) {
            let name = job.delivery.target
            let target = queue(for: name)
            target.dueRetries.append(job)
            markRunnableIfReady(name, target)
        }
    }

    private func markRunnableIfReady(_ name: String, _ target: TargetQueue) {
        guard !target.isRunnable && target.hasWaitingJobs && target.inFlight < maxInFlightPerTarget else { return }
        target.isRunnable = true
        runnable.append(name)
    }

    private func forgetIfIdle(_ name: String, _ target: TargetQueue) {
        if target.inFlight == 0 && !target.hasWaitingJobs && !target.isRunnable {
            targets[name] = nil
        }
    }

    // MARK: Transfers

    private func startTransfers() {
        while running.count < maxInFlight, let name = runnable.popFirst() {
            guard let target = targets[name] else { continue }
            target.isRunnable = false
            if target.inFlight < maxInFlightPerTarget, let job = target.popNext() {
                start(job, target: target)
            }
            markRunnableIfReady(name, target)
            forgetIfIdle(name, target)
        }
    }

    /// Starts the next attempt of `job`, or settles it at once if it cannot start.
    private func start(_ waiting: Job, target: TargetQueue) {
        var job = waiting
        inbox.queued.subtract(1, ordering: .relaxed)
        let startMs = currentUnixMs()
        // The first attempt always goes out; a retry only while the receiver would still accept it.
        if job.attempts > 0 && !policy.isWithinMaxAge(job.delivery, startMs: startMs) {
            report(job.delivery, .failed(lastError: job.lastError, attempts: job.attempts))
            return
        }
        job.attempts += 1
        let body = job.delivery.body(nowMs: startMs)
        let headerLines = job.delivery.headerLines(body: body, attempt: job.attempts, userAgent: options.userAgent)

        let transfer: TransferHandle
        do {
            transfer = try takeTransferHandle()
        } catch {
            settle(job, .transportFailed(error))
            return
        }
        do {
            try transfer.prepare(url: job.delivery.url, headerLines: headerLines, body: body, tls: job.delivery.tls)
        } catch {
            idleTransfers.append(transfer)
            settle(job, .transportFailed(error))
            return
        }
        let added = curl_multi_add_handle(multi, transfer.handle)
        guard added == CURLM_OK else {
            idleTransfers.append(transfer)
            let detail = "curl_multi_add_handle: " + String(cString: curl_multi_strerror(added))
            settle(job, .transportFailed(CurlError(CURLE_FAILED_INIT, detail: detail)))
            return
        }
        running[transfer.handle] = RunningAttempt(job: job, transfer: transfer)
        target.inFlight += 1
        inbox.inFlight.add(1, ordering: .relaxed)
    }

    private func takeTransferHandle() throws(CurlError) -> TransferHandle {
        if let idle = idleTransfers.popLast() { return idle }
        return try TransferHandle(connectTimeoutMs: options.connectTimeoutMs, requestTimeoutMs: options.requestTimeoutMs)
    }

    private func collectFinishedTransfers() {
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(multi, &remaining) {
            // The message dies with curl_multi_remove_handle: copy what we need first.
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
            finish(easy, code: message.pointee.data.result)
        }
    }

    private func finish(_ easy: UnsafeMutableRawPointer, code: CURLcode) {
        guard let attempt = running.removeValue(forKey: easy) else { return }
        curl_multi_remove_handle(multi, easy)
        inbox.inFlight.subtract(1, ordering: .relaxed)
        let result = attempt.transfer.result(of: code)
        idleTransfers.append(attempt.transfer)

        let name = attempt.job.delivery.target
        if let target = targets[name] {
            target.inFlight -= 1
            markRunnableIfReady(name, target)
            forgetIfIdle(name, target)
        }
        settle(attempt.job, result)
    }

    // MARK: Outcomes

    /// Decides what an attempt's result means: delivered, failed for good, or retry later.
    private func settle(_ job: Job, _ result: AttemptResult) {
        switch result {
        case .answered(let status, _, _) where RetryPolicy.isSuccess(status: status):
            report(job.delivery, .delivered(status: status, attempts: job.attempts))
        case .answered(let status, let retryAfter, let bodySnippet):
            let error = Self.describe(status: status, bodySnippet: bodySnippet)
            if RetryPolicy.isRetryable(status: status) {
                retryLater(job, lastError: error, retryAfter: retryAfter)
            } else {
                report(job.delivery, .failed(lastError: error, attempts: job.attempts))
            }
        case .transportFailed(let error):
            if error.isRetryable {
                retryLater(job, lastError: error.description, retryAfter: nil)
            } else {
                report(job.delivery, .failed(lastError: error.description, attempts: job.attempts))
            }
        }
    }

    private func retryLater(_ failed: Job, lastError: String, retryAfter: String?) {
        // Stopping: it stays undelivered, and the outbox sends it again after the restart.
        guard !isStopping else { return }
        var job = failed
        job.lastError = lastError
        let nowMs = currentUnixMs()
        let delayMs = policy.delayMs(afterAttempts: job.attempts, retryAfter: retryAfter, nowMs: nowMs, using: &random)
        guard policy.isWithinMaxAge(job.delivery, startMs: nowMs + Int64(delayMs)) else {
            report(job.delivery, .failed(lastError: lastError, attempts: job.attempts))
            return
        }
        retries.insert(job, dueMs: MonotonicClock.milliseconds + Int64(delayMs))
        inbox.queued.add(1, ordering: .relaxed)
        if let log, let line = retryLog.line(target: job.delivery.target, error: lastError, attempts: job.attempts,
                                             nowMs: MonotonicClock.milliseconds) {
            log(line)
        }
    }

    private func report(_ delivery: WebhookDelivery, _ outcome: DeliveryOutcome) {
        onOutcome(delivery, outcome)
    }

    /// `HTTP 503: <start of the body>`, on one line.
    static func describe(status: Int, bodySnippet: String) -> String {
        let flattened = String(bodySnippet.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : Character($0) })
        let trimmed = flattened.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        return trimmed.isEmpty ? "HTTP \(status)" : "HTTP \(status): \(trimmed)"
    }

    // MARK: Waiting and stopping

    /// How long `curl_multi_poll` may sleep when nothing else wakes it: until
    /// the next retry is due or the stop deadline, at most a second.
    private func pollTimeoutMs(stopDeadlineMs: Int64?) -> Int32 {
        let now = MonotonicClock.milliseconds
        var timeout: Int64 = 1_000
        if let due = retries.nextDueMs {
            timeout = min(timeout, due - now)
        }
        if let stopDeadlineMs {
            timeout = min(timeout, stopDeadlineMs - now)
        }
        // Whole milliseconds, so a due time is never slept short of: waking early would
        // only turn into a busy wait.
        return Int32(max(0, timeout))
    }

    private func shutDown() {
        // No wake-ups from here on: the handle is about to go.
        inbox.state.withLock { $0.wakeUp = nil }
        for easy in running.keys {
            curl_multi_remove_handle(multi, easy)
        }
        inbox.inFlight.subtract(running.count, ordering: .relaxed)
        running.removeAll()
        idleTransfers.removeAll()
        curl_multi_cleanup(multi)
    }
}

/// Wall-clock Unix time in milliseconds, the clock of `time_ms` and `createdAtMs`.
func currentUnixMs() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
}
