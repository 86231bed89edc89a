import Glibc

/// The outbox's state and every operation on it: recovery, appends, acks, rotation and
/// compaction. Not thread-safe; `Outbox` runs it under a mutex. Log lines collect in
/// `messages` so they can be handed on after the lock is released.
struct OutboxStore {
    private struct PendingEntry {
        let payload: [UInt8]
        /// Base of the segment holding the newest copy of the entry.
        var segment: UInt64
    }

    private let directory: OutboxDirectory
    private let maxBytes: Int
    private let segmentBytes: Int
    private let syncEveryRecord: Bool
    /// Oldest first; the last one takes the appends unless it is sealed.
    private var segments: [OutboxSegment] = []
    private var pending: [UInt64: PendingEntry] = [:]
    private var nextId: UInt64 = 1
    private var ids = OutboxIdReservation(limit: 0)
    private(set) var diskBytes = 0
    /// Records were written to the newest segment since its last fdatasync.
    private var dirty = false
    private var isClosed = false
    private var messages: [String] = []
    /// After a failed compaction step (a full disk, most likely) compaction rests a
    /// second, so acks don't each retry a big copy and log the same failure.
    private var compactionPausedUntil: ContinuousClock.Instant?

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

    // MARK: Recovery

    private mutating func recover() throws(OutboxError) {
        let names = try directory.fileNames()
        // A mark that was written but never renamed into place: the old mark still holds.
        if names.contains(OutboxIdReservation.temporaryName) {
            try? directory.unlink(OutboxIdReservation.temporaryName)
        }
        var highestId: UInt64 = 0
        var newestEndsCleanly = false
        for base in names.compactMap(OutboxSegment.base(fromName:)).sorted() {
            let segment = OutboxSegment(base: base, size: 0)
            let bytes = try OutboxFile.read(directory.path(of: segment.name))
            segments.append(segment)
            setSize(of: segments.count - 1, to: bytes.count)
            newestEndsCleanly = replay(bytes, highestId: &highestId)
        }

        let (limit, problem) = OutboxIdReservation.load(from: directory)
        if let problem { note(problem) }
        ids = OutboxIdReservation(limit: min(limit, OutboxRecord.maxId))
        nextId = max(1, highestId + 1, segments.last?.base ?? 0, ids.limit)

        if newestEndsCleanly, let index = segments.indices.last, segments[index].size < segmentBytes {
            segments[index].file = try OutboxFile.open(directory.path(of: segments[index].name), flags: O_RDWR)
        } else {
            // A damaged newest segment is left as it is rather than truncated: the bytes
            // after the damage may still matter to whoever investigates it.
            if !segments.isEmpty && !newestEndsCleanly { note("appends continue in a new segment") }
            try rotate()
        }
        try ids.cover(nextId, in: directory)
        compact()
    }

    /// Applies the records of the segment last added to `segments`; true when its bytes
    /// end exactly after a complete record.
    private mutating func replay(_ bytes: [UInt8], highestId: inout UInt64) -> Bool {
        let segment = segments[segments.count - 1]
        let path = directory.path(of: segment.name)
        let header = OutboxSegment.header
        guard bytes.count >= header.count, Array(bytes[..<header.count]) == header else {
            note("\(path): no valid segment header in its \(bytes.count) byte(s); the file is skipped")
            return false
        }
        var offset = header.count
        while true {
            switch OutboxRecord.decode(bytes, at: offset) {
            case .end:
                return true
            case .record(let record):
                highestId = max(highestId, record.id)
                switch record.kind {
                case .entry:
                    // A second copy comes from compaction; the newest is the one that counts.
                    if let older = pending[record.id] { adjustLive(older, by: -1) }
                    let entry = PendingEntry(payload: record.payload, segment: segment.base)
                    pending[record.id] = entry
                    adjustLive(entry, by: 1)
                case .ack:
                    if let entry = pending.removeValue(forKey: record.id) { adjustLive(entry, by: -1) }
                }
                offset += record.size
            case .torn(let reason), .corrupt(let reason):
                note("\(path): stopped reading at offset \(offset), \(reason); "
                    + "the \(bytes.count - offset) byte(s) from there on are skipped")
                return false
            }
        }
    }

    // MARK: Writing

    private func checkOpen(_ operation: String) throws(OutboxError) {
        if isClosed {
            throw .io(operation: operation, path: directory.path, errno: EBADF, message: "the outbox is closed")
        }
    }

    private func needsNewSegment(forEntry: Bool) -> Bool {
        guard let newest = segments.last, newest.file != nil else { return true }
        return forEntry && newest.size >= segmentBytes
    }

    private func hasRoom(for recordSize: Int) -> Bool {
        let newHeader = needsNewSegment(forEntry: true) ? OutboxSegment.header.count : 0
        return diskBytes + newHeader + recordSize <= maxBytes
    }

    /// Writes records at the end of the newest segment, first starting a new one if it
    /// is sealed. A failed write leaves the file as it was, so the next record follows
    /// the last good one and nothing the caller was told failed comes back after a restart.
    private mutating func writeToNewest(_ bytes: [UInt8], syncNow: Bool) throws(OutboxError) {
        if needsNewSegment(forEntry: false) { try rotate() }
        let index = segments.count - 1
        guard let file = segments[index].file else { preconditionFailure("rotate() leaves an open newest segment") }
        let offset = segments[index].size
        do {
            try file.write(bytes, at: offset)
            if syncNow { try file.syncData() }
        } catch {
            discardTail(of: index, from: offset)
            if case .io("fdatasync", _, _, _) = error { markSuspect(index) }
            throw error
        }
        setSize(of: index, to: offset + bytes.count)
        dirty = !syncNow
    }

    /// Cuts a failed write (or its part that made it) off the end of the segment.
    private mutating func discardTail(of index: Int, from offset: Int) {
        guard let file = segments[index].file else { return }
        do {
            try file.truncate(to: offset)
        } catch {
            // Unknown bytes would sit between the last record and the next: start afresh.
            setSize(of: index, to: (try? file.size()) ?? offset)
            segments[index].seal()
            note("\(error); appends continue in a new segment")
        }
    }

    /// After a failed fdatasync: no more appends to the segment, and compaction rewrites its entries.
    private mutating func markSuspect(_ index: Int) {
        segments[index].suspect = true
        segments[index].seal()
        note("\(directory.path(of: segments[index].name)): fdatasync failed; its pending entries "
            + "will be rewritten to a new segment")
    }

    /// Seals the newest segment and starts a new one. The sealed segment is synced here
    /// because the flusher only ever looks at the newest.
    private mutating func rotate() throws(OutboxError) {
        let base = max(nextId, (segments.last?.base ?? 0) + 1)
        let segment = try OutboxSegment.create(in: directory, base: base)
        if let index = segments.indices.last, let file = segments[index].file {
            if dirty {
                do {
                    try file.syncData()
                } catch {
                    note("sealing a segment: \(error)")
                    markSuspect(index)
                }
            }
            segments[index].seal()
        }
        segments.append(segment)
        diskBytes += segment.size
        nextId = base
        dirty = false
    }

    // MARK: Compaction

    /// Frees disk space. Never throws: a failed step is logged and leaves every entry where it was.
    private mutating func compact() {
        if let until = compactionPausedUntil {
            guard ContinuousClock.now >= until else { return }
            compactionPausedUntil = nil
        }
        startFreshSegmentIfDrained()
        rescueSuspectSegments()
        deleteOldestSegments()
    }

    /// With nothing pending the newest segment is only history; moving on lets it go.
    private mutating func startFreshSegmentIfDrained() {
        guard pending.isEmpty, let newest = segments.last,
              newest.size > OutboxSegment.header.count, newest.size >= segmentBytes / 4
        else { return }
        do {
            try rotate()
        } catch {
            compactionFailed("could not start a new segment: \(error)")
        }
    }

    private mutating func rescueSuspectSegments() {
        let suspects = segments.dropLast().filter { $0.suspect && $0.liveCount > 0 }.map(\.base)
        guard !suspects.isEmpty else { return }
        do {
            try copyForward(from: Set(suspects))
        } catch {
            compactionFailed("could not rewrite the entries of a segment whose fdatasync failed: \(error)")
        }
    }

    /// Deletes the longest run of oldest segments whose pending entries fill at most a
    /// quarter of their bytes (three quarters once the log passes half of maxBytes),
    /// after copying those entries into the newest segment.
    ///
    /// Only a run starting at the oldest may go: an ack can sit in a newer segment than
    /// its entry, and deleting the ack while the entry stayed would bring it back after
    /// a restart.
    private mutating func deleteOldestSegments() {
        let liveQuarters = diskBytes > maxBytes / 2 ? 3 : 1
        var live = 0
        var total = 0
        var count = 0
        for (index, segment) in segments.dropLast().enumerated() {
            live += segment.liveBytes
            total += segment.size
            if live * 4 <= total * liveQuarters { count = index + 1 }
        }
        guard count > 0 else { return }
        if segments[..<count].contains(where: { $0.liveCount > 0 }) {
            do {
                try copyForward(from: Set(segments[..<count].map(\.base)))
            } catch {
                compactionFailed("could not copy entries forward: \(error)")
                return
            }
        }
        for _ in 0..<count {
            let oldest = segments[0]
            do {
                try directory.unlink(oldest.name)
            } catch {
                compactionFailed("\(error)")
                return
            }
            segments.removeFirst()
            diskBytes -= oldest.size
            do {
                // One sync per deletion, so after a crash the deleted segments are still
                // the oldest ones and no ack goes missing ahead of its entry.
                try directory.sync()
            } catch {
                compactionFailed("\(error)")
                return
            }
        }
    }

    private mutating func compactionFailed(_ reason: String) {
        note("compaction: \(reason); retrying in a second at the earliest")
        compactionPausedUntil = ContinuousClock.now + .seconds(1)
    }

    /// Rewrites the pending entries held in `bases` into the newest segment, with
    /// their ids, and syncs it whatever the policy: the originals are deleted next.
    private mutating func copyForward(from bases: Set<UInt64>) throws(OutboxError) {
        let ids = pending.filter { bases.contains($0.value.segment) }.keys.sorted()
        var buffer: [UInt8] = []
        for id in ids {
            OutboxRecord.encode(.entry, id: id, payload: pending[id]!.payload, into: &buffer)
        }
        try writeToNewest(buffer, syncNow: true)
        let target = segments[segments.count - 1].base
        for id in ids {
            var entry = pending[id]!
            adjustLive(entry, by: -1)
            entry.segment = target
            adjustLive(entry, by: 1)
            pending[id] = entry
        }
    }

    // MARK: Bookkeeping

    private mutating func adjustLive(_ entry: PendingEntry, by delta: Int) {
        guard let index = segments.lastIndex(where: { $0.base == entry.segment }) else { return }
        segments[index].liveCount += delta
        segments[index].liveBytes += delta * OutboxRecord.size(payloadCount: entry.payload.count)
    }

    private mutating func setSize(of index: Int, to size: Int) {
        diskBytes += size - segments[index].size
        segments[index].size = size
    }

    private mutating func note(_ message: String) {
        messages.append(message)
    }
}
