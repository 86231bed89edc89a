import System

/// Compaction: segments whose entries were mostly acknowledged are deleted after their
/// pending entries are copied forward into the newest segment.
extension OutboxStore {
    /// Frees disk space. Never throws: a failed step is logged and leaves every entry where it was.
    mutating func compact() {
        if let until = compactionPausedUntilMs {
            guard MonotonicClock.milliseconds >= until else { return }
            compactionPausedUntilMs = nil
        }
        startFreshSegmentIfDrained()
        rescueSuspectSegments()
        deleteOldestSegments()
    }

    /// With nothing pending the newest segment is only history; moving on lets it go.
    mutating func startFreshSegmentIfDrained() {
        guard pending.isEmpty, let newest = segments.last,
              newest.size > OutboxSegment.header.count, newest.size >= segmentBytes / 4
        else { return }
        do {
            try rotate()
        } catch {
            compactionFailed("could not start a new segment: \(error)")
        }
    }

    mutating func rescueSuspectSegments() {
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
    mutating func deleteOldestSegments() {
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

    mutating func compactionFailed(_ reason: String) {
        note("compaction: \(reason); retrying in a second at the earliest")
        compactionPausedUntilMs = MonotonicClock.milliseconds + 1_000
    }

    /// Rewrites the pending entries held in `bases` into the newest segment, with
    /// their ids, and syncs it whatever the policy: the originals are deleted next.
    mutating func copyForward(from bases: Set<UInt64>) throws(OutboxError) {
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
}
