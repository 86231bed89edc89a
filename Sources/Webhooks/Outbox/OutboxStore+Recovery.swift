import Glibc

/// Recovery at open: every segment is replayed, record by record, to rebuild the pending
/// entries, and the id mark is read so that ids keep increasing across restarts.
extension OutboxStore {
    mutating func recover() throws(OutboxError) {
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
    mutating func replay(_ bytes: [UInt8], highestId: inout UInt64) -> Bool {
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
}
