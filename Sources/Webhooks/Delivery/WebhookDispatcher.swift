import CCurl
import Dispatch
import Foundation
import Synchronization
import System

/// Delivers webhooks over HTTP with retries (PROTOCOL.md §1.16, DESIGN.md §3
/// and §6). One thread runs a libcurl multi handle (`DeliveryLoop`); any
/// thread may submit. Transfers share the multi handle's connection cache, so
/// consecutive webhooks to one backend reuse a keep-alive connection.
///
/// Every attempt POSTs `{"time_ms":…,"events":…}` signed with the app secret
/// and carries `X-Bridge-Webhook-Id` (the same on every attempt) and
/// `X-Bridge-Webhook-Attempt`. 2xx is success. Network errors, timeouts, 408,
/// 409, 425, 429 and 5xx are retried with exponential backoff and full jitter
/// (or after `Retry-After`) until the webhook would be older than `maxAgeMs`;
/// any other answer is final. First attempts to one target start in
/// submission order; each target and the whole dispatcher have an in-flight
/// cap, so a dead or hanging target only ties up its own slots.
public final class WebhookDispatcher: Sendable {
    private let options: DispatcherOptions
    private let onOutcome: @Sendable (WebhookDelivery, DeliveryOutcome) -> Void
    private let log: (@Sendable (String) -> Void)?
    private let inbox = DispatcherInbox()

    /// `onOutcome` runs on the dispatcher thread, at most once per delivery:
    /// when it is delivered or will not be retried. It must return quickly
    /// and must not call `stop`. Deliveries still pending at `stop` get no outcome.
    /// `log` hears failed attempts that will be retried (at most one line per target per
    /// `retryLogIntervalMs`), on the dispatcher thread.
    public init(options: DispatcherOptions, log: (@Sendable (String) -> Void)? = nil,
                onOutcome: @escaping @Sendable (WebhookDelivery, DeliveryOutcome) -> Void) {
        self.options = options
        self.log = log
        self.onOutcome = onOutcome
    }

    /// Starts the dispatcher thread. Deliveries submitted before are sent once it runs.
    /// Calling it again, or after `stop`, does nothing.
    public func start() {
        let shouldStart = inbox.state.withLock { state in
            guard !state.started && state.accepting else { return false }
            state.started = true
            return true
        }
        guard shouldStart else { return }
        let (options, onOutcome, log, inbox) = (self.options, self.onOutcome, self.log, self.inbox)
        inbox.finished.enter()
        let thread = Thread {
            DeliveryLoop(options: options, onOutcome: onOutcome, log: log, inbox: inbox).run()
            inbox.finished.leave()
        }
        thread.name = "bridge-webhook-delivery"
        thread.start()
    }

    /// Queues a delivery and wakes the dispatcher thread. O(1), thread-safe,
    /// never waits for the network. Ignored once `stop` was called.
    public func submit(_ delivery: WebhookDelivery) {
        inbox.state.withLock { state in
            guard state.accepting else { return }
            state.submitted.append(delivery)
            inbox.queued.add(1, ordering: .relaxed)
            // The thread takes the whole list per wake-up, so only the first
            // submission since then needs to wake it.
            if state.submitted.count == 1 {
                state.wakeUp?.wake()
            }
        }
    }

    /// Transfers running now.
    public var inFlightCount: Int { inbox.inFlight.load(ordering: .relaxed) }

    /// Deliveries waiting: first attempts not yet started and scheduled retries.
    public var queuedCount: Int { inbox.queued.load(ordering: .relaxed) }

    /// Stops accepting, waits up to `graceMs` for in-flight transfers, then
    /// returns. Nothing new starts meanwhile; undelivered deliveries simply
    /// stay undelivered (the outbox redelivers them after a restart).
    public func stop(graceMs: Int) {
        let grace = max(0, graceMs)
        let wasStarted = inbox.state.withLock { state in
            state.accepting = false
            if state.stopDeadlineMs == nil {
                state.stopDeadlineMs = MonotonicClock.milliseconds + Int64(grace)
            }
            state.wakeUp?.wake()
            return state.started
        }
        guard wasStarted else { return }
        // The thread abandons its transfers at the deadline; the margin covers
        // its clean-up. Past that we return anyway rather than hang a shutdown.
        _ = inbox.finished.wait(timeout: .now() + .milliseconds(grace + 2_000))
    }
}

/// What the caller threads share with the dispatcher thread.
final class DispatcherInbox: Sendable {
    struct State {
        /// Submitted and not yet taken by the dispatcher thread.
        var submitted: [WebhookDelivery] = []
        var started = false
        var accepting = true
        /// Set by `stop`: in-flight transfers are abandoned at this instant (`MonotonicClock.milliseconds`).
        var stopDeadlineMs: Int64?
        /// Set while the thread runs; cleared under the lock before the multi
        /// handle is cleaned up, so a wake-up never touches a freed handle.
        var wakeUp: MultiWakeUp?
    }

    let state = Mutex(State())
    let inFlight = Atomic<Int>(0)
    let queued = Atomic<Int>(0)
    /// Entered when the thread starts, left when it has finished.
    let finished = DispatchGroup()
}

/// The dispatcher thread's multi handle as other threads see it: the one
/// call they make on it is `curl_multi_wakeup`, which libcurl allows from any thread.
struct MultiWakeUp: @unchecked Sendable {
    let multi: UnsafeMutableRawPointer

    /// Makes the current or next `curl_multi_poll` return at once.
    func wake() {
        _ = curl_multi_wakeup(multi)
    }
}
