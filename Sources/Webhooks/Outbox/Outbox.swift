import Glibc
import Synchronization

/// A durable outbox for webhook deliveries: payloads are appended to an on-disk log
/// before they count as emitted, and whatever is not acknowledged comes back, in
/// append order, when the outbox is opened again after a restart or a crash.
///
/// On disk (all integers little-endian):
/// - Segment files `outbox-<16 hex digits>.log`. The digits are the segment's base,
///   the first id that could be appended to it; bases grow strictly, so name order is
///   age order. A segment is the 8-byte header "BRDGOBX" + version 1, then records.
///   Appends go to the newest segment; a new one starts once it passes `segmentBytes`.
/// - Records: kind (1 byte: "E" entry, "A" ack), body length (UInt32), body
///   (entry: id UInt64 + payload; ack: id UInt64), CRC-32C of kind + length + body
///   (UInt32). 17 bytes of framing per record, built in one buffer and written with
///   one pwrite(2).
/// - `outbox.meta`: a mark above every id handed out, reserved 65,536 ids at a time
///   (see `OutboxIdReservation`), so ids keep increasing across restarts even when a
///   power loss or a deletion took the newest records.
///
/// Recovery reads the segments oldest first; pending = entries − acks. A record that
/// is cut short (a torn tail) or fails its checks ends the reading of that segment and
/// is reported through `log`. A damaged newest segment is left alone and appends
/// continue in a new one. A directory lock (flock) refuses a second writer.
///
/// Durability: `.always` fdatasyncs every record (entries, acks and compaction copies)
/// before the call returns, so a power loss loses nothing acknowledged as appended.
/// `.interval(N)` leaves records in the page cache and a background flusher
/// fdatasyncs the newest segment every N ms when something was written: a crash of
/// the process loses nothing (the kernel has the data), a power loss or kernel crash
/// can lose about the last N ms of appends and acks (a lost ack means one more delivery).
/// Segment creation, deletion and the id mark are synced under both policies.
///
/// Compaction, after acks and when a segment fills: the longest run of oldest
/// segments whose pending entries fill at most a quarter of their bytes (three quarters
/// past half of `maxBytes`) is deleted, after its pending entries are copied, same ids,
/// into the newest segment and synced. Only the oldest segments may go, since an ack
/// can sit in a newer segment than its entry. Once nothing is pending, the newest
/// segment is replaced by an empty one when it holds a quarter segment or more, so disk
/// use follows the backlog, not the history. Copies may briefly take the log past
/// `maxBytes` by less than the bytes they free.
///
/// Errors: a failed write is cut off the file again (ftruncate) and reported as `.io`;
/// the outbox stays usable for reads and acks, and appends work again once the disk
/// has room. An ack whose record can't be written still takes the entry out of the
/// pending set (the delivery happened) and throws so the caller can log it. After a
/// failed fdatasync the segment is sealed and its pending entries are rewritten to a
/// new one, since Linux may have dropped the data it could not write.
///
/// Pending payloads are also kept in memory, so memory use follows the backlog (at most
/// about `maxBytes`).
public final class Outbox: @unchecked Sendable {  // all state is behind `store`'s mutex
    public enum SyncPolicy: Sendable, Equatable {
        /// fdatasync before every append (and ack) returns.
        case always
        /// fdatasync at most every N ms from a background flusher: a power loss can lose
        /// the last N ms, a process crash loses nothing.
        case interval(milliseconds: Int)
    }

    public struct Options: Sendable {
        /// Created, with missing parents, if needed.
        public var directory: String
        /// A bound on the segment files' total size; an append beyond it throws `.full`.
        public var maxBytes: Int = 256 << 20
        public var sync: SyncPolicy = .interval(milliseconds: 100)
        /// A new segment file starts once the newest one is past this size.
        public var segmentBytes: Int = 8 << 20

        public init(directory: String) {
            self.directory = directory
        }
    }

    public struct Entry: Sendable, Equatable {
        public let id: UInt64
        public let payload: [UInt8]
    }

    public enum OutboxError: Error, Sendable, Equatable, CustomStringConvertible {
        /// Appending would take the log past `maxBytes`; acknowledge entries to free space.
        case full(limit: Int)
        /// A system call failed: `operation` is its name (open, write, fdatasync, rename,
        /// unlink, ...) and `message` errno's text.
        case io(operation: String, path: String, errno: Int32, message: String)
        /// One payload is over the limit (16 MiB).
        case payloadTooLarge(limit: Int)

        public var description: String {
            switch self {
            case .full(let limit):
                return "outbox full: appending would exceed \(limit) bytes on disk until delivered entries are acknowledged"
            case .io(let operation, let path, let code, let message):
                return "outbox \(operation) failed for \(path): \(message) (errno \(code))"
            case .payloadTooLarge(let limit):
                return "outbox payload too large: the limit is \(limit) bytes"
            }
        }
    }

    private let store: Mutex<OutboxStore>
    private let log: @Sendable (String) -> Void
    private let flusher: OutboxFlusher?

    /// Opens (or creates) the outbox and recovers it: reads every segment, verifies each
    /// record's checksum, stops reading a segment at a torn or corrupt record and reports
    /// it through `log`, and rebuilds the set of unacknowledged entries.
    ///
    /// `log` is called without any lock held, from the calling thread or the flusher.
    public init(options: Options, log: @escaping @Sendable (String) -> Void = { _ in }) throws(OutboxError) {
        let store = try OutboxStore.open(options, log: log)
        self.store = Mutex(store)
        self.log = log
        if case .interval(let milliseconds) = options.sync {
            let flusher = OutboxFlusher(milliseconds: milliseconds)
            self.flusher = flusher
            flusher.start { [weak self] in self?.flushInBackground() }
        } else {
            flusher = nil
        }
    }

    deinit {
        flusher?.stop()
        for message in store.withLock({ store in store.close(); return store.takeMessages() }) {
            log(message)
        }
    }

    /// Entries appended and not acknowledged, oldest first (after recovery: what a
    /// previous process left).
    public func pendingEntries() -> [Entry] {
        store.withLock { $0.pendingEntries() }
    }

    /// Appends durably (per the sync policy) and returns the new entry's id: strictly
    /// increasing, also across restarts.
    public func append(_ payload: [UInt8]) throws(OutboxError) -> UInt64 {
        try locked { store throws(OutboxError) in try store.append(payload) }
    }

    /// Marks an entry delivered (or dead-lettered). Unknown or already acknowledged ids
    /// are ignored. Frees disk space when worthwhile.
    public func acknowledge(_ id: UInt64) throws(OutboxError) {
        try locked { store throws(OutboxError) in try store.acknowledge(id) }
    }

    /// The current total size of the segment files.
    public var diskBytes: Int {
        store.withLock { $0.diskBytes }
    }

    public var pendingCount: Int {
        store.withLock { $0.pendingCount }
    }

    /// fdatasync now, whatever the policy.
    public func sync() throws(OutboxError) {
        try locked { store throws(OutboxError) in try store.sync() }
    }

    /// Stops the flusher, syncs and closes the files and releases the directory lock.
    /// Later appends, acks and syncs throw `.io`.
    public func close() {
        flusher?.stop()
        try? locked { store throws(OutboxError) in store.close() }
    }

    /// Runs `body` under the lock, then passes on what it logged.
    private func locked<Result: Sendable>(
        _ body: (inout OutboxStore) throws(OutboxError) -> Result
    ) throws(OutboxError) -> Result {
        let (outcome, messages) = store.withLock { store -> (Swift.Result<Result, OutboxError>, [String]) in
            let outcome: Swift.Result<Result, OutboxError>
            do throws(OutboxError) {
                outcome = .success(try body(&store))
            } catch {
                outcome = .failure(error)
            }
            return (outcome, store.takeMessages())
        }
        messages.forEach(log)
        return try outcome.get()
    }

    /// One flusher tick: fdatasync on a duplicate descriptor, outside the lock, so
    /// appends carry on meanwhile.
    private func flushInBackground() {
        guard let job = store.withLock({ $0.startBackgroundSync() }) else { return }
        let failed = fdatasync(job.fd) != 0
        let code = errno
        Glibc.close(job.fd)
        guard failed else { return }
        let messages = store.withLock { store in
            store.backgroundSyncFailed(base: job.base, error: .posix("fdatasync", job.path, code))
            return store.takeMessages()
        }
        messages.forEach(log)
    }
}
