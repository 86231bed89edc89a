import Dispatch

/// The `.interval` policy's background fdatasync: runs a tick every N milliseconds on
/// a private serial queue until stopped, so appends never wait for the disk.
// @unchecked: the timer is only configured in init and touched by start and stop,
// which the owning Outbox calls from its own init, close and deinit.
final class OutboxFlusher: @unchecked Sendable {
    private let queue = DispatchQueue(label: "bridge.webhooks.outbox-flusher")
    private let timer: DispatchSourceTimer
    private let onQueue = DispatchSpecificKey<Bool>()

    init(milliseconds: Int) {
        let interval = DispatchTimeInterval.milliseconds(max(1, milliseconds))
        timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + interval, repeating: interval,
                       leeway: .milliseconds(max(1, milliseconds / 10)))
        queue.setSpecific(key: onQueue, value: true)
    }

    /// Must be called once: Dispatch traps when a timer that never ran is released.
    func start(_ tick: @escaping @Sendable () -> Void) {
        timer.setEventHandler(handler: tick)
        timer.resume()
    }

    /// Stops the ticks and, unless called from a tick itself, waits for a running one to end.
    func stop() {
        timer.cancel()
        if DispatchQueue.getSpecific(key: onQueue) == nil {
            queue.sync {}
        }
    }
}
