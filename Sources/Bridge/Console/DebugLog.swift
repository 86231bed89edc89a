import Glibc
import Synchronization
import System

/// One app's recent activity for the debug console: a bounded ring of entries with increasing
/// sequence numbers. It records only while a console is watching (polled the log within
/// `watchWindowNanos`), so that when nobody watches, every hook costs one atomic load.
final class DebugLog: Sendable {
    enum Kind: String, Sendable {
        case apiMessage = "api_message"
        case clientEvent = "client_event"
        case subscribed
        case unsubscribed
        case channelOccupied = "channel_occupied"
        case channelVacated = "channel_vacated"
        case memberAdded = "member_added"
        case memberRemoved = "member_removed"
        case cacheMiss = "cache_miss"
        case webhookSent = "webhook_sent"
        case webhookFailed = "webhook_failed"
    }

    struct Entry: Sendable, Equatable {
        let seq: UInt64
        /// Unix time in milliseconds.
        let timeMs: Int64
        let kind: Kind
        let channel: String?
        let event: String?
        /// At most `maxDataBytes` of the event's data, cut on a character boundary.
        let data: String?
        let detail: String?
    }

    static let defaultCapacity = 500
    static let defaultWatchWindowNanos: UInt64 = 60_000_000_000
    /// Event data past this is cut: the console shows what happened, not whole payloads.
    static let maxDataBytes = 2048

    private struct Ring {
        var entries: [Entry] = []
        /// Where the next entry goes once `entries` is full.
        var oldest = 0
        var lastSeq: UInt64 = 0
    }

    private let capacity: Int
    private let watchWindowNanos: UInt64
    private let clock: @Sendable () -> UInt64
    /// Monotonic time until which recording is on; 0 when off (set back to 0 by the first
    /// hook that finds it expired, so an unwatched log needs no clock read).
    private let watchedUntil = Atomic<UInt64>(0)
    private let ring = Mutex(Ring())

    init(capacity: Int = DebugLog.defaultCapacity, watchWindowNanos: UInt64 = DebugLog.defaultWatchWindowNanos,
         clock: @escaping @Sendable () -> UInt64 = { MonotonicClock.nanoseconds }) {
        self.capacity = max(1, capacity)
        self.watchWindowNanos = watchWindowNanos
        self.clock = clock
    }

    /// A console polled the log: record for the next `watchWindowNanos`.
    func watch() {
        watchedUntil.store(clock() + watchWindowNanos, ordering: .relaxed)
    }

    var isRecording: Bool {
        let until = watchedUntil.load(ordering: .relaxed)
        guard until != 0 else { return false }
        guard clock() < until else {
            _ = watchedUntil.compareExchange(expected: until, desired: 0, ordering: .relaxed)
            return false
        }
        return true
    }

    /// Adds an entry while a console watches. The autoclosures are not evaluated otherwise, so
    /// callers on hot paths build no strings for nobody.
    func record(_ kind: Kind, channel: @autoclosure () -> String? = nil, event: @autoclosure () -> String? = nil,
                data: @autoclosure () -> String? = nil, detail: @autoclosure () -> String? = nil) {
        guard isRecording else { return }
        let (channel, event, data, detail) = (channel(), event(), data().map(Self.truncated), detail())
        let timeMs = Self.unixMs()
        ring.withLock { ring in
            ring.lastSeq += 1
            let entry = Entry(seq: ring.lastSeq, timeMs: timeMs, kind: kind, channel: channel, event: event,
                              data: data, detail: detail)
            if ring.entries.count < capacity {
                ring.entries.append(entry)
            } else {
                ring.entries[ring.oldest] = entry
                ring.oldest = (ring.oldest + 1) % capacity
            }
        }
    }

    /// Entries with a sequence number above `after`, oldest first, and the last sequence number
    /// recorded (the `after` of the next call; lower than `after` when the log was restarted).
    func entries(after: UInt64) -> (entries: [Entry], last: UInt64) {
        ring.withLock { ring in
            let ordered = ring.entries[ring.oldest...] + ring.entries[..<ring.oldest]
            return (ordered.filter { $0.seq > after }, ring.lastSeq)
        }
    }

    static func truncated(_ text: String) -> String {
        guard text.utf8.count > maxDataBytes else { return text }
        let bytes = Array(text.utf8)
        var end = maxDataBytes
        // Back off continuation bytes (10xxxxxx) so that the cut falls between characters.
        while end > 0 && bytes[end] & 0xC0 == 0x80 { end -= 1 }
        return String(decoding: bytes[..<end], as: UTF8.self) + "…"
    }

    static func unixMs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}
