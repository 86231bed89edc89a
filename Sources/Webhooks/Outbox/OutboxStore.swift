import Glibc

/// The outbox's state and the operations `Outbox` calls: appends, acks, syncs and close.
/// Recovery, the write path (with rotation) and compaction are extensions in
/// `OutboxStore+Recovery`, `+Writing` and `+Compaction`. Not thread-safe; `Outbox` runs it
/// under a mutex. Log lines collect in `messages` so they can be handed on after the lock
/// is released.
struct OutboxStore {
    struct PendingEntry {
        let payload: [UInt8]
        /// Base of the segment holding the newest copy of the entry.
        var segment: UInt64
    }

    let directory: OutboxDirectory
    let maxBytes: Int
    let segmentBytes: Int
    let syncEveryRecord: Bool
    /// Oldest first; the last one takes the appends unless it is sealed.
    var segments: [OutboxSegment] = []
    var pending: [UInt64: PendingEntry] = [:]
    var nextId: UInt64 = 1
    var ids = OutboxIdReservation(limit: 0)
    var diskBytes = 0
    /// Records were written to the newest segment since its last fdatasync.
    var dirty = false
    var isClosed = false
    private var messages: [String] = []
    /// After a failed compaction step (a full disk, most likely) compaction rests a
    /// second, so acks don't each retry a big copy and log the same failure.
    var compactionPausedUntilMs: Int64?

    private init(directory: OutboxDirectory, options: Outbox.Options) {
        self.directory = directory
        self.maxBytes = options.maxBytes
        self.segmentBytes = max(1, options.segmentBytes)
        self.syncEveryRecord = options.sync == .always
    }

    /// Opens the directory and rebuilds the pending entries from its segments. What
    /// recovery found (torn tails, corrupt records) goes to `log`, failure or not.
    static func open(_ options: Outbox.Options, log: (String) -> Void) throws(OutboxError) -> OutboxStore {
        var store = OutboxStore(directory: try OutboxDirectory.open(options.directory), options: options)
        do {
            try store.recover()
        } catch {
            store.close()
            store.takeMessages().forEach(log)
            throw error
        }
        store.takeMessages().forEach(log)
        return store
    }

    // MARK: Operations

    var pendingCount: Int { pending.count }

    func pendingEntries() -> [Outbox.Entry] {
        pending.sorted { $0.key < $1.key }.map { Outbox.Entry(id: $0.key, payload: $0.value.payload) }
    }

    mutating func append(_ payload: [UInt8]) throws(OutboxError) -> UInt64 {
        try checkOpen("append")
        guard payload.count <= OutboxRecord.maxPayload else {
            throw .payloadTooLarge(limit: OutboxRecord.maxPayload)
        }
        let recordSize = OutboxRecord.size(payloadCount: payload.count)
        if !hasRoom(for: recordSize) {
            compact()
            guard hasRoom(for: recordSize) else { throw .full(limit: maxBytes) }
        }
        let segmentCount = segments.count
        if needsNewSegment(forEntry: true) { try rotate() }

        let id = nextId
        try ids.cover(id, in: directory)
        // Spent even if the write fails: a failed record that lingers on disk must never
        // share its id with a later entry.
        nextId += 1
        var record: [UInt8] = []
        record.reserveCapacity(recordSize)
        OutboxRecord.encode(.entry, id: id, payload: payload, into: &record)
        try writeToNewest(record, syncNow: syncEveryRecord)

        let entry = PendingEntry(payload: payload, segment: segments[segments.count - 1].base)
        pending[id] = entry
        adjustLive(entry, by: 1)
        // A new segment sealed the previous one, which compaction may now free.
        if segments.count != segmentCount { compact() }
        return id
    }

    mutating func acknowledge(_ id: UInt64) throws(OutboxError) {
        try checkOpen("acknowledge")
        guard let entry = pending.removeValue(forKey: id) else { return }
        adjustLive(entry, by: -1)
        var record: [UInt8] = []
        OutboxRecord.encode(.ack, id: id, into: &record)
        // The entry stops being pending even if its ack can't be written: the delivery
        // happened, and a lost ack costs at most one more delivery after a restart.
        var failure: OutboxError?
        do {
            try writeToNewest(record, syncNow: syncEveryRecord)
        } catch {
            failure = error
        }
        if entry.segment != segments.last?.base || pending.isEmpty { compact() }
        if let failure { throw failure }
    }

    mutating func sync() throws(OutboxError) {
        try checkOpen("sync")
        guard let index = segments.indices.last, let file = segments[index].file else { return }
        do {
            try file.syncData()
        } catch {
            markSuspect(index)
            throw error
        }
        dirty = false
    }

    /// For the background flusher: a duplicate descriptor of the newest segment, to
    /// fdatasync without holding the lock; nil when nothing was written since the last sync.
    mutating func startBackgroundSync() -> (fd: Int32, base: UInt64, path: String)? {
        guard !isClosed, dirty, let newest = segments.last, let file = newest.file else { return nil }
        // Close-on-exec like every other descriptor here, which plain dup(2) would drop.
        let copy = fcntl(file.fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else {
            note("background sync: \(OutboxError.posix("dup", file.path, errno)); retrying on the next tick")
            return nil
        }
        dirty = false
        return (copy, newest.base, file.path)
    }

    mutating func backgroundSyncFailed(base: UInt64, error: OutboxError) {
        note("background sync: \(error)")
        if let index = segments.firstIndex(where: { $0.base == base }) { markSuspect(index) }
    }

    /// Syncs and closes everything; later operations throw.
    mutating func close() {
        guard !isClosed else { return }
        isClosed = true
        if let file = segments.last?.file {
            do {
                try file.syncData()
            } catch {
                note("closing: \(error)")
            }
        }
        for index in segments.indices { segments[index].seal() }
        directory.close()
    }

    mutating func takeMessages() -> [String] {
        defer { messages = [] }
        return messages
    }

    // MARK: Bookkeeping

    mutating func adjustLive(_ entry: PendingEntry, by delta: Int) {
        guard let index = segments.lastIndex(where: { $0.base == entry.segment }) else { return }
        segments[index].liveCount += delta
        segments[index].liveBytes += delta * OutboxRecord.size(payloadCount: entry.payload.count)
    }

    mutating func setSize(of index: Int, to size: Int) {
        diskBytes += size - segments[index].size
        segments[index].size = size
    }

    mutating func note(_ message: String) {
        messages.append(message)
    }
}
