import Glibc

/// The write path: records go to the end of the newest segment; a failed write is cut
/// off again, a failed fdatasync seals the segment, and rotation starts a new one.
extension OutboxStore {
    func checkOpen(_ operation: String) throws(OutboxError) {
        if isClosed {
            throw .io(operation: operation, path: directory.path, errno: EBADF, message: "the outbox is closed")
        }
    }

    func needsNewSegment(forEntry: Bool) -> Bool {
        guard let newest = segments.last, newest.file != nil else { return true }
        return forEntry && newest.size >= segmentBytes
    }

    func hasRoom(for recordSize: Int) -> Bool {
        let newHeader = needsNewSegment(forEntry: true) ? OutboxSegment.header.count : 0
        return diskBytes + newHeader + recordSize <= maxBytes
    }

    /// Writes records at the end of the newest segment, first starting a new one if it
    /// is sealed. A failed write leaves the file as it was, so the next record follows
    /// the last good one and nothing the caller was told failed comes back after a restart.
    mutating func writeToNewest(_ bytes: [UInt8], syncNow: Bool) throws(OutboxError) {
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
    mutating func discardTail(of index: Int, from offset: Int) {
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
    mutating func markSuspect(_ index: Int) {
        segments[index].suspect = true
        segments[index].seal()
        note("\(directory.path(of: segments[index].name)): fdatasync failed; its pending entries "
            + "will be rewritten to a new segment")
    }

    /// Seals the newest segment and starts a new one. The sealed segment is synced here
    /// because the flusher only ever looks at the newest.
    mutating func rotate() throws(OutboxError) {
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
}
