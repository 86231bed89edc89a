import Dispatch
import Foundation
import Glibc
import Synchronization
import Testing
import Webhooks

/// `Outbox` on real files: each test works in its own directory under /tmp and removes it.
@Suite struct OutboxTests {
    @Test func appendAndAcknowledgeKeepAppendOrder() throws {
        let dir = try TestDirectory()
        defer { dir.remove() }
        let outbox = try Outbox(options: options(dir.outbox))
        defer { outbox.close() }

        let ids = try (0..<5).map { try outbox.append(payload($0)) }
        #expect(ids == ids.sorted() && Set(ids).count == 5)
        #expect(outbox.pendingEntries().map(\.id) == ids)
        #expect(outbox.pendingEntries().map(\.payload) == (0..<5).map { payload($0) })

        try outbox.acknowledge(ids[1])
        try outbox.acknowledge(ids[3])
        try outbox.acknowledge(ids[3])  // already acknowledged
        try outbox.acknowledge(123_456_789)  // never appended
        #expect(outbox.pendingEntries().map(\.id) == [ids[0], ids[2], ids[4]])
        #expect(outbox.pendingCount == 3)
        #expect(outbox.diskBytes == segmentBytesOnDisk(dir.outbox))
    }

    @Test func reopenRecoversExactlyTheUnacknowledgedEntriesInOrder() throws {
        let dir = try TestDirectory()
        defer { dir.remove() }
        var expected: [Outbox.Entry] = []
        do {
            let outbox = try Outbox(options: options(dir.outbox, sync: .interval(milliseconds: 10)))
            for index in 0..<20 {
                let id = try outbox.append(payload(index))
                if index % 2 == 1 { try outbox.acknowledge(id) }
            }
            expected = outbox.pendingEntries()
            outbox.close()
        }
        let lines = LogLines()
        let reopened = try Outbox(options: options(dir.outbox), log: lines.sink)
        #expect(reopened.pendingEntries() == expected)
        #expect(reopened.pendingEntries().map(\.payload) == stride(from: 0, to: 20, by: 2).map { payload($0) })
        #expect(lines.all.isEmpty)

        let newId = try reopened.append(payload(99))
        #expect(newId > expected.last!.id)
        reopened.close()
        let again = try Outbox(options: options(dir.outbox))
        defer { again.close() }
        #expect(again.pendingEntries().map(\.id) == expected.map(\.id) + [newId])
    }

    @Test func idsKeepIncreasingAfterEverythingWasAcknowledgedAndCompacted() throws {
        let dir = try TestDirectory()
        defer { dir.remove() }
        let small = options(dir.outbox, segmentBytes: 4096)
        var lastId: UInt64 = 0
        do {
            let outbox = try Outbox(options: small)
            for index in 0..<50 {
                lastId = try outbox.append(payload(index, size: 1000))
                try outbox.acknowledge(lastId)
            }
            #expect(outbox.pendingCount == 0)
            #expect(outbox.diskBytes < 4096)
            outbox.close()
        }
        do {
            let outbox = try Outbox(options: small)
            let id = try outbox.append(payload(50))
            #expect(id > lastId)
            lastId = id
            try outbox.acknowledge(id)
            outbox.close()
        }
        // Even with every segment gone the id mark keeps ids from repeating.
        for name in segmentNames(dir.outbox) { unlink(dir.outbox + "/" + name) }
        let outbox = try Outbox(options: small)
        defer { outbox.close() }
        #expect(outbox.pendingCount == 0)
        #expect(try outbox.append(payload(51)) > lastId)
    }

    /// What a power loss under `.interval` looks like: the newest records never reached the disk.
    @Test func idsAreNotReusedWhenThePowerLossTookTheNewestRecords() throws {
        let dir = try TestDirectory()
        defer { dir.remove() }
        var ids: [UInt64] = []
        do {
            let outbox = try Outbox(options: options(dir.outbox, sync: .interval(milliseconds: 60_000)))
            ids = try (0..<10).map { try outbox.append(payload($0)) }
            outbox.close()
        }
        let segment = dir.outbox + "/" + segmentNames(dir.outbox).last!
        #expect(truncate(segment, 8) == 0)  // only the header survived
        let outbox = try Outbox(options: options(dir.outbox))
        defer { outbox.close() }
        #expect(outbox.pendingCount == 0)
        #expect(try outbox.append(payload(10)) > ids.last!)
    }

    /// A real kill -9: this test binary runs again as a child that appends (and acks every
    /// fourth entry) under `.interval` with a one-minute flush, so nothing is ever
    /// fdatasynced, until the parent kills it mid-stream. In the child this test is the writer.
    @Test func killedWriterProcessLosesNothing() throws {
        if let child = ChildProcess.current {
            return try ChildProcess.runKilledWriter(directory: child.directory, progress: child.progress)
        }
        let dir = try TestDirectory()
        defer { dir.remove() }
        let progressPath = dir.path + "/progress"
        let child = try ChildProcess.spawn(test: "killedWriterProcessLosesNothing", directory: dir.outbox,
                                           progress: progressPath, output: dir.path + "/child.log")
        var reported = 0
        var status: ChildProcess.Status?
        let deadline = ContinuousClock.now + .seconds(60)
        while reported < 3000 && ContinuousClock.now < deadline && status == nil {
            usleep(1000)
            reported = ChildProcess.progress(progressPath)
            status = ChildProcess.exitStatus(child)
        }
        if status == nil {
            kill(child, SIGKILL)
            status = ChildProcess.wait(child)
        }
        let childOutput = (try? String(contentsOfFile: dir.path + "/child.log", encoding: .utf8)) ?? ""
        #expect(status == .signaled(SIGKILL), "child: \(childOutput)")
        #expect(reported >= 3000, "child: \(childOutput)")
        // The child may have done more than the last progress it published.
        reported = ChildProcess.progress(progressPath)

        let lines = LogLines()
        let outbox = try Outbox(options: options(dir.outbox), log: lines.sink)
        defer { outbox.close() }
        let entries = outbox.pendingEntries()
        let indexes = entries.map { payloadIndex($0.payload) }
        #expect(entries.allSatisfy { $0.payload == payload(payloadIndex($0.payload)) })
        #expect(indexes == indexes.sorted() && Set(indexes).count == indexes.count)
        let expectedPrefix = (0..<reported).filter { $0 % 4 != 3 }
        #expect(Array(indexes.prefix(expectedPrefix.count)) == expectedPrefix)
        #expect(indexes.dropFirst(expectedPrefix.count).allSatisfy { $0 >= reported })
        #expect(lines.all.isEmpty, "a killed process never tears a record: \(lines.all)")
    }

    /// The cheaper kill -9 stand-in: a copy of the files taken while the writer is open
    /// and has synced nothing is what the page cache would show after a crash.
    @Test func copyTakenWhileTheWriterIsOpenRecoversEverything() throws {
        let dir = try TestDirectory()
        defer { dir.remove() }
        let outbox = try Outbox(options: options(dir.outbox, sync: .interval(milliseconds: 60_000), segmentBytes: 16 << 10))
        defer { outbox.close() }
        for index in 0..<500 {
            let id = try outbox.append(payload(index))
            if index % 5 == 0 { try outbox.acknowledge(id) }
        }
        let copy = dir.path + "/copy"
        try copyFiles(from: dir.outbox, to: copy)

        let recovered = try Outbox(options: options(copy))
        defer { recovered.close() }
        #expect(recovered.pendingCount == 400)
        #expect(recovered.pendingEntries() == outbox.pendingEntries())
    }

    @Test func tornTailIsSkippedAndAppendsContinue() throws {
        let dir = try TestDirectory()
        defer { dir.remove() }
        var ids: [UInt64] = []
        do {
            let outbox = try Outbox(options: options(dir.outbox))
            ids = try (0..<10).map { try outbox.append(payload($0)) }
            outbox.close()
        }
        let segment = dir.outbox + "/" + segmentNames(dir.outbox).last!
        #expect(truncate(segment, off_t(fileSize(segment) - 7)) == 0)  // the last record loses its checksum and more

        let lines = LogLines()
        var newId: UInt64 = 0
        do {
            let outbox = try Outbox(options: options(dir.outbox), log: lines.sink)
            #expect(outbox.pendingEntries().map(\.id) == Array(ids.prefix(9)))
            #expect(lines.all.count == 2)
            #expect(lines.all.first?.contains("stopped reading at offset") == true)
            #expect(lines.all.first?.contains("left") == true)
            newId = try outbox.append(payload(10))
            #expect(newId > ids.last!)
            outbox.close()
        }
        let outbox = try Outbox(options: options(dir.outbox))
        defer { outbox.close() }
        #expect(outbox.pendingEntries().map(\.id) == Array(ids.prefix(9)) + [newId])
        #expect(outbox.pendingEntries().last?.payload == payload(10))
    }

    @Test func corruptRecordEndsTheSegmentAndIsReported() throws {
        let dir = try TestDirectory()
        defer { dir.remove() }
        var ids: [UInt64] = []
        do {
            let outbox = try Outbox(options: options(dir.outbox))
            ids = try (0..<10).map { try outbox.append(payload($0, size: 100)) }
            outbox.close()
        }
        // Flip a byte inside the fifth record's payload: header, four 117-byte records, 13 bytes of framing.
        let segment = dir.outbox + "/" + segmentNames(dir.outbox).last!
        try flipByte(in: segment, at: 8 + 4 * 117 + 13 + 10)

        let lines = LogLines()
        var newId: UInt64 = 0
        do {
            let outbox = try Outbox(options: options(dir.outbox), log: lines.sink)
            #expect(outbox.pendingEntries().map(\.id) == Array(ids.prefix(4)))
            #expect(lines.all.contains { $0.contains("checksum mismatch") && $0.contains("offset \(8 + 4 * 117)") })
            newId = try outbox.append(payload(10))
            outbox.close()
        }
        let outbox = try Outbox(options: options(dir.outbox))
        defer { outbox.close() }
        #expect(outbox.pendingEntries().map(\.id) == Array(ids.prefix(4)) + [newId])
    }

    /// Truncations, flipped bits and overwritten ranges at random places: recovery
    /// never crashes or hangs and never invents an entry.
    @Test func damagedSegmentsNeverBreakRecovery() throws {
        let dir = try TestDirectory()
        defer { dir.remove() }
        var appended: [UInt64: [UInt8]] = [:]
        do {
            let outbox = try Outbox(options: options(dir.outbox, sync: .interval(milliseconds: 60_000)))
            for index in 0..<40 {
                let bytes = payload(index, size: 20 + index * 7)
                let id = try outbox.append(bytes)
                appended[id] = bytes
                if index % 3 == 0 { try outbox.acknowledge(id) }
            }
            outbox.close()
        }
        let name = segmentNames(dir.outbox).last!
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir.outbox + "/" + name)))
        var random = SplitMix64(seed: 0x0b0c_5eed)
        for trial in 0..<60 {
            var damaged = original
            switch trial % 4 {
            case 0:
                damaged.removeLast(Int.random(in: 1...damaged.count, using: &random))
            case 1:
                let index = Int.random(in: 0..<damaged.count, using: &random)
                damaged[index] ^= UInt8(1 << Int.random(in: 0..<8, using: &random))
            case 2:
                let start = Int.random(in: 0..<damaged.count, using: &random)
                for index in start..<min(damaged.count, start + 32) { damaged[index] = UInt8.random(in: 0...255, using: &random) }
            default:
                let start = Int.random(in: 0..<damaged.count, using: &random)
                damaged.insert(contentsOf: [UInt8](repeating: 0, count: 9), at: start)
            }
            let trialDir = dir.path + "/trial\(trial)"
            mkdir(trialDir, 0o755)
            try Data(damaged).write(to: URL(fileURLWithPath: trialDir + "/" + name))

            let outbox = try Outbox(options: options(trialDir, sync: .interval(milliseconds: 60_000)))
            let entries = outbox.pendingEntries()
            #expect(entries.allSatisfy { appended[$0.id] == $0.payload }, "trial \(trial)")
            _ = try outbox.append(payload(1000))
            outbox.close()
            try FileManager.default.removeItem(atPath: trialDir)
        }
    }

    @Test func emptyAndForeignFilesDoNotBreakRecovery() throws {
        let dir = try TestDirectory()
        defer { dir.remove() }
        mkdir(dir.outbox, 0o755)
        try Data("notes".utf8).write(to: URL(fileURLWithPath: dir.outbox + "/README.txt"))
        try Data("x".utf8).write(to: URL(fileURLWithPath: dir.outbox + "/outbox-12.log"))
        try Data().write(to: URL(fileURLWithPath: dir.outbox + "/outbox-0000000000000003.log"))  // crash right after creating it

        let lines = LogLines()
        let outbox = try Outbox(options: options(dir.outbox), log: lines.sink)
        #expect(outbox.pendingCount == 0)
        #expect(lines.all.contains { $0.contains("no valid segment header") })
        let id = try outbox.append(payload(0))
        #expect(id >= 3)
        outbox.close()

        let reopened = try Outbox(options: options(dir.outbox))
        defer { reopened.close() }
        #expect(reopened.pendingEntries().map(\.id) == [id])
        #expect(FileManager.default.fileExists(atPath: dir.outbox + "/README.txt"))
        #expect(FileManager.default.fileExists(atPath: dir.outbox + "/outbox-12.log"))
    }

    /// The byte layout documented in Outbox.swift; the checksums come from an independent
    /// Python CRC-32C (its check value for "123456789" is 0xE3069283).
    @Test func onDiskFormatIsTheDocumentedOne() throws {
        let dir = try TestDirectory()
        defer { dir.remove() }
        let header: [UInt8] = Array("BRDGOBX".utf8) + [1]
        let entry: [UInt8] = [0x45, 0x0D, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                              0x68, 0x65, 0x6C, 0x6C, 0x6F, 0xA4, 0xF7, 0x28, 0x11]
        let ack: [UInt8] = [0x41, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                            0xDB, 0x42, 0x8B, 0x47]
        let mark: [UInt8] = Array("BRDGOBXM".utf8) + [0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
                                                      0x29, 0x0B, 0xB1, 0x76]
        do {
            let outbox = try Outbox(options: options(dir.outbox))
            #expect(try outbox.append(Array("hello".utf8)) == 1)
            try outbox.acknowledge(1)
            outbox.close()
        }
        #expect(segmentNames(dir.outbox) == ["outbox-0000000000000001.log"])
        #expect(try readBytes(dir.outbox + "/outbox-0000000000000001.log") == header + entry + ack)
        #expect(try readBytes(dir.outbox + "/outbox.meta") == mark)

        // And a file written by hand reads back; ids continue from the segment's base.
        let handMade = dir.path + "/hand"
        mkdir(handMade, 0o755)
        try Data(header + entry).write(to: URL(fileURLWithPath: handMade + "/outbox-0000000000000005.log"))
        let outbox = try Outbox(options: options(handMade))
        defer { outbox.close() }
        #expect(outbox.pendingEntries().map(\.id) == [1])
        #expect(outbox.pendingEntries().map(\.payload) == [Array("hello".utf8)])
        #expect(try outbox.append([]) == 5)
    }

    @Test func acknowledgedHistoryIsCompactedAway() throws {
        let dir = try TestDirectory()
        defer { dir.remove() }
        let outbox = try Outbox(options: options(dir.outbox, sync: .interval(milliseconds: 100)))
        defer { outbox.close() }
        let segmentBytes = Outbox.Options(directory: "").segmentBytes
        let ids = try (0..<10_000).map { try outbox.append(payload($0, size: 1024)) }
        #expect(outbox.diskBytes > 10_000 * 1024)
        #expect(segmentNames(dir.outbox).count == 2)

        for id in ids { try outbox.acknowledge(id) }
        #expect(outbox.pendingCount == 0)
        #expect(outbox.diskBytes < 2 * segmentBytes)
        #expect(outbox.diskBytes < 64 << 10)
        #expect(outbox.diskBytes == segmentBytesOnDisk(dir.outbox))
    }

    @Test func longLivedEntryIsCopiedForwardAndItsOldSegmentDeleted() throws {
        let dir = try TestDirectory()
        defer { dir.remove() }
        let small = options(dir.outbox, segmentBytes: 16 << 10)
        var stuck: Outbox.Entry?
        do {
            let outbox = try Outbox(options: small)
            let stuckId = try outbox.append(payload(0, size: 500))
            let firstSegment = segmentNames(dir.outbox)
            for index in 1...100 {
                try outbox.acknowledge(try outbox.append(payload(index, size: 1000)))
            }
            #expect(outbox.pendingEntries().map(\.id) == [stuckId])
            stuck = outbox.pendingEntries().first
            #expect(Set(segmentNames(dir.outbox)).isDisjoint(with: firstSegment))
            #expect(outbox.diskBytes < 3 * (16 << 10))
            outbox.close()
        }
        let outbox = try Outbox(options: small)
        defer { outbox.close() }
        #expect(outbox.pendingEntries() == [stuck!])
    }

    /// A crash after the copies were synced but before the old segment was unlinked
    /// leaves both copies; recovery must count the entry once.
    @Test func entryCopiedForwardIsRecoveredOnceIfTheOldSegmentSurvives() throws {
        let dir = try TestDirectory()
        defer { dir.remove() }
        let small = options(dir.outbox, segmentBytes: 4096)
        let firstSegment = dir.outbox + "/outbox-0000000000000001.log"
        var stuck: Outbox.Entry?
        do {
            let outbox = try Outbox(options: small)
            _ = try outbox.append(payload(0, size: 200))
            stuck = outbox.pendingEntries().first
            for index in 1...4 { try outbox.acknowledge(try outbox.append(payload(index, size: 1000))) }
            let saved = try readBytes(firstSegment)
            for index in 5...8 { try outbox.acknowledge(try outbox.append(payload(index, size: 1000))) }
            #expect(!FileManager.default.fileExists(atPath: firstSegment))
            outbox.close()
            try Data(saved).write(to: URL(fileURLWithPath: firstSegment))
        }
        let outbox = try Outbox(options: small)
        defer { outbox.close() }
        #expect(outbox.pendingEntries() == [stuck!])
        #expect(!FileManager.default.fileExists(atPath: firstSegment))  // compacted again on open
    }

    /// D and E live in the first segment, their acks in the second. The second holds
    /// nothing pending, but deleting it while the first stays would bring D and E back.
    @Test func segmentWithAcksForAnOlderSegmentIsKept() throws {
        let dir = try TestDirectory()
        defer { dir.remove() }
        let small = options(dir.outbox, segmentBytes: 4096)
        var expected: [UInt64] = []
        do {
            let outbox = try Outbox(options: small)
            let first = try (0..<5).map { try outbox.append(payload($0, size: 1000)) }  // A...E fill the first segment
            expected = Array(first.prefix(3))
            #expect(segmentNames(dir.outbox).count == 1)
            try outbox.acknowledge(try outbox.append(payload(5, size: 1000)))  // F starts the second
            try outbox.acknowledge(first[3])
            try outbox.acknowledge(first[4])
            for index in 6..<9 { try outbox.acknowledge(try outbox.append(payload(index, size: 1000))) }
            expected.append(try outbox.append(payload(9, size: 1000)))  // J starts the third
            #expect(segmentNames(dir.outbox).count == 3)
            outbox.close()
        }
        let outbox = try Outbox(options: small)
        defer { outbox.close() }
        #expect(outbox.pendingEntries().map(\.id) == expected)
    }

    @Test func fullOutboxRefusesAppendsUntilAcknowledgementsFreeSpace() throws {
        let dir = try TestDirectory()
        defer { dir.remove() }
        let outbox = try Outbox(options: options(dir.outbox, segmentBytes: 8 << 10, maxBytes: 64 << 10))
        defer { outbox.close() }
        var ids: [UInt64] = []
        var failure: Outbox.OutboxError?
        while failure == nil && ids.count < 1000 {
            failure = caught { ids.append(try outbox.append(payload(ids.count, size: 1000))) }
        }
        #expect(failure == .full(limit: 64 << 10))
        #expect(ids.count > 50)
        #expect(outbox.diskBytes <= 64 << 10)
        #expect(segmentBytesOnDisk(dir.outbox) <= 64 << 10)
        #expect(outbox.pendingEntries().map(\.id) == ids)
        #expect(caught { _ = try outbox.append(payload(0, size: 1000)) } == .full(limit: 64 << 10))

        for id in ids { try outbox.acknowledge(id) }
        #expect(outbox.diskBytes < 16 << 10)
        for index in 0..<20 { _ = try outbox.append(payload(index, size: 1000)) }
        #expect(outbox.pendingCount == 20)
    }

    /// Root ignores directory permissions, so as root the directory is a read-only tmpfs.
    @Test(.enabled(if: geteuid() != 0 || Tmpfs.canMount))
    func unwritableDirectoryGivesAnIOError() throws {
        let dir = try TestDirectory()
        defer { dir.remove() }
        let target = dir.path + "/locked"
        mkdir(target, 0o755)
        let expectedErrno: Int32
        if geteuid() != 0 {
            chmod(target, 0o500)
            expectedErrno = EACCES
        } else {
            try Tmpfs.mount(at: target, kilobytes: 64, readOnly: true)
            expectedErrno = EROFS
        }
        defer {
            if geteuid() == 0 { Tmpfs.unmount(target) } else { chmod(target, 0o755) }
        }
        for path in [target, target + "/nested"] {
            let error = caught { _ = try Outbox(options: options(path)) }
            guard case .io(_, _, let code, let message) = error else {
                Issue.record("expected an .io error for \(path), got \(String(describing: error))")
                continue
            }
            #expect(code == expectedErrno)
            #expect(message == String(cString: strerror(expectedErrno)))
            #expect(error!.description.contains(path))
        }
    }

    /// ENOSPC for real: the outbox shares a small tmpfs with a filler file, then the
    /// filler goes and appends work again.
    @Test(.enabled(if: Tmpfs.canMount))
    func fullDiskGivesAnIOErrorAndAppendsResumeWhenSpaceReturns() throws {
        let dir = try TestDirectory()
        defer { dir.remove() }
        let mountPoint = dir.path + "/fs"
        mkdir(mountPoint, 0o755)
        try Tmpfs.mount(at: mountPoint, kilobytes: 256)
        defer { Tmpfs.unmount(mountPoint) }
        try Data(count: 150 << 10).write(to: URL(fileURLWithPath: mountPoint + "/filler"))

        let path = mountPoint + "/outbox"
        let lines = LogLines()
        var expected: [UInt64] = []
        var acknowledged: UInt64 = 0
        do {
            let outbox = try Outbox(options: options(path, segmentBytes: 32 << 10), log: lines.sink)
            var failure: Outbox.OutboxError?
            while failure == nil && expected.count < 1000 {
                failure = caught { expected.append(try outbox.append(payload(expected.count, size: 1000))) }
            }
            guard case .io(_, _, ENOSPC, let message) = failure else {
                Issue.record("expected ENOSPC, got \(String(describing: failure))")
                outbox.close()
                return
            }
            #expect(message == "No space left on device")
            #expect(expected.count > 10)
            #expect(outbox.diskBytes == segmentBytesOnDisk(path))
            // Reads and acks still work. An ack whose record can't be written still takes the
            // entry out of the pending set; only after a restart would it come back.
            #expect(outbox.pendingEntries().map(\.id) == expected)
            let ackWritten = caught { try outbox.acknowledge(expected[0]) } == nil
            acknowledged = expected.removeFirst()
            #expect(outbox.pendingEntries().map(\.id) == expected)
            #expect(caught { _ = try outbox.append(payload(0, size: 1000)) } != nil)
            if !ackWritten { expected.insert(acknowledged, at: 0) }

            unlink(mountPoint + "/filler")
            for index in 0..<20 { expected.append(try outbox.append(payload(1000 + index, size: 1000))) }
            outbox.close()
        }
        let outbox = try Outbox(options: options(path), log: lines.sink)
        defer { outbox.close() }
        #expect(outbox.pendingEntries().map(\.id) == expected)
        #expect(lines.all.isEmpty, "a failed write leaves no torn record: \(lines.all)")
    }

    /// EFBIG through RLIMIT_FSIZE, which works without root. The limit applies to the
    /// whole process, so the scenario runs in a child: this test again, in this binary.
    @Test func fileSizeLimitGivesAnIOErrorInAChildProcess() throws {
        if let child = ChildProcess.current {
            return try ChildProcess.runFileSizeLimit(directory: child.directory)
        }
        let dir = try TestDirectory()
        defer { dir.remove() }
        let child = try ChildProcess.spawn(test: "fileSizeLimitGivesAnIOErrorInAChildProcess", directory: dir.outbox,
                                           progress: dir.path + "/progress", output: dir.path + "/child.log")
        let status = ChildProcess.wait(child)
        let childOutput = (try? String(contentsOfFile: dir.path + "/child.log", encoding: .utf8)) ?? ""
        #expect(status == .exited(0), "child: \(childOutput)")
        #expect(childOutput.contains("fileSizeLimitGivesAnIOErrorInAChildProcess() passed"), "the child ran the scenario: \(childOutput)")
    }

    @Test(arguments: [Outbox.SyncPolicy.always, .interval(milliseconds: 1), .interval(milliseconds: 50)])
    func bothSyncPoliciesRoundTrip(policy: Outbox.SyncPolicy) throws {
        let dir = try TestDirectory()
        defer { dir.remove() }
        var expected: [Outbox.Entry] = []
        do {
            let outbox = try Outbox(options: options(dir.outbox, sync: policy, segmentBytes: 8 << 10))
            for index in 0..<200 {
                let id = try outbox.append(payload(index))
                if index % 3 == 0 { try outbox.acknowledge(id) }
                if index % 50 == 0 { usleep(2000) }  // let the flusher run between appends
            }
            try outbox.sync()
            expected = outbox.pendingEntries()
            outbox.close()
        }
        let outbox = try Outbox(options: options(dir.outbox, sync: policy))
        defer { outbox.close() }
        #expect(outbox.pendingEntries() == expected)
        #expect(expected.count == 133)
    }

    @Test func closedOutboxThrowsAndReleasesTheDirectory() throws {
        let dir = try TestDirectory()
        defer { dir.remove() }
        let outbox = try Outbox(options: options(dir.outbox, sync: .interval(milliseconds: 5)))
        let id = try outbox.append(payload(0))
        outbox.close()
        outbox.close()
        for error in [caught { _ = try outbox.append(payload(1)) }, caught { try outbox.acknowledge(id) },
                      caught { try outbox.sync() }] {
            guard case .io(_, _, EBADF, "the outbox is closed") = error else {
                Issue.record("expected .io for a closed outbox, got \(String(describing: error))")
                continue
            }
        }
        let reopened = try Outbox(options: options(dir.outbox))
        defer { reopened.close() }
        #expect(reopened.pendingEntries().map(\.id) == [id])
    }

    @Test func secondOutboxOnTheSameDirectoryIsRefused() throws {
        let dir = try TestDirectory()
        defer { dir.remove() }
        let outbox = try Outbox(options: options(dir.outbox))
        defer { outbox.close() }
        let error = caught { _ = try Outbox(options: options(dir.outbox)) }
        guard case .io("flock", _, EWOULDBLOCK, _) = error else {
            Issue.record("expected a flock error, got \(String(describing: error))")
            return
        }
        #expect(error!.description.contains("another Outbox"))
    }

    @Test func oversizedPayloadIsRefused() throws {
        let dir = try TestDirectory()
        defer { dir.remove() }
        let outbox = try Outbox(options: options(dir.outbox))
        defer { outbox.close() }
        let tooLarge = [UInt8](repeating: 7, count: (16 << 20) + 1)
        #expect(caught { _ = try outbox.append(tooLarge) } == .payloadTooLarge(limit: 16 << 20))
        #expect(outbox.pendingCount == 0)
        _ = try outbox.append(payload(0))
        #expect(outbox.pendingCount == 1)
    }

    @Test func concurrentAppendsAndAcknowledgements() throws {
        let dir = try TestDirectory()
        defer { dir.remove() }
        let outbox = try Outbox(options: options(dir.outbox, sync: .interval(milliseconds: 2), segmentBytes: 64 << 10))
        let kept = Mutex<[UInt64: [UInt8]]>([:])
        let failures = Mutex<[Outbox.OutboxError]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for index in 0..<500 {
                let bytes = payload(thread * 1000 + index)
                do throws(Outbox.OutboxError) {
                    let id = try outbox.append(bytes)
                    if index % 2 == 0 {
                        try outbox.acknowledge(id)
                    } else {
                        kept.withLock { $0[id] = bytes }
                    }
                } catch {
                    failures.withLock { $0.append(error) }
                }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty)
        let expected = kept.withLock { $0 }
        #expect(outbox.pendingCount == 2000)
        #expect(outbox.pendingEntries().map(\.id) == expected.keys.sorted())
        outbox.close()

        let reopened = try Outbox(options: options(dir.outbox))
        defer { reopened.close() }
        #expect(reopened.pendingEntries().allSatisfy { expected[$0.id] == $0.payload })
        #expect(reopened.pendingCount == 2000)
    }

    /// Not a timed assertion: 100,000 appends of 200 bytes under `.interval` must simply
    /// complete, and the time goes to the test log.
    @Test func hundredThousandSmallAppends() throws {
        let dir = try TestDirectory()
        defer { dir.remove() }
        let outbox = try Outbox(options: options(dir.outbox, sync: .interval(milliseconds: 100)))
        let body = [UInt8](repeating: 0x61, count: 200)
        let clock = ContinuousClock()
        let elapsed = try clock.measure {
            for _ in 0..<100_000 { _ = try outbox.append(body) }
        }
        #expect(outbox.pendingCount == 100_000)
        #expect(outbox.diskBytes >= 100_000 * 217)
        outbox.close()
        print("outbox: 100,000 appends of 200 bytes in \(elapsed)")
    }
}

// MARK: - Helpers

private func options(_ directory: String, sync: Outbox.SyncPolicy = .always,
                     segmentBytes: Int = 8 << 20, maxBytes: Int = 256 << 20) -> Outbox.Options {
    var options = Outbox.Options(directory: directory)
    options.sync = sync
    options.segmentBytes = segmentBytes
    options.maxBytes = maxBytes
    return options
}

/// "entry-<index>-" then filler bytes that depend on the index, `size` bytes in all.
private func payload(_ index: Int, size: Int = 100) -> [UInt8] {
    var bytes = Array("entry-\(index)-".utf8)
    while bytes.count < size { bytes.append(UInt8(truncatingIfNeeded: index &* 31 &+ bytes.count)) }
    return Array(bytes.prefix(size))
}

private func payloadIndex(_ payload: [UInt8]) -> Int {
    let text = String(decoding: payload.prefix(24), as: UTF8.self)
    return Int(text.split(separator: "-")[1]) ?? -1
}

/// The `OutboxError` that `body` threw, or nil when it returned.
private func caught<T>(_ body: () throws -> T) -> Outbox.OutboxError? {
    do {
        _ = try body()
        return nil
    } catch let error as Outbox.OutboxError {
        return error
    } catch {
        Issue.record("not an OutboxError: \(error)")
        return nil
    }
}

private func segmentNames(_ directory: String) -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    return names.filter { $0.hasPrefix("outbox-") && $0.hasSuffix(".log") }.sorted()
}

private func fileSize(_ path: String) -> Int {
    var status = stat()
    return stat(path, &status) == 0 ? Int(status.st_size) : -1
}

private func segmentBytesOnDisk(_ directory: String) -> Int {
    segmentNames(directory).map { fileSize(directory + "/" + $0) }.reduce(0, +)
}

private func readBytes(_ path: String) throws -> [UInt8] {
    try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
}

private func flipByte(in path: String, at offset: Int) throws {
    var bytes = try readBytes(path)
    bytes[offset] ^= 0x20
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

private func copyFiles(from source: String, to destination: String) throws {
    try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: true)
    for name in try FileManager.default.contentsOfDirectory(atPath: source) {
        try FileManager.default.copyItem(atPath: source + "/" + name, toPath: destination + "/" + name)
    }
}

/// A fresh directory under /tmp for one test; `outbox` is a path inside it that does not
/// exist yet, so every test also exercises the outbox creating its directory.
private struct TestDirectory {
    let path: String
    var outbox: String { path + "/outbox" }

    init() throws {
        var template = Array("/tmp/outbox-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        path = String(cString: made)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

private final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])

    var sink: @Sendable (String) -> Void {
        { [self] line in lines.withLock { $0.append(line) } }
    }

    var all: [String] {
        lines.withLock { $0 }
    }
}

/// A small deterministic generator, so a failing damage trial can be replayed.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A small tmpfs mounted for a test: the one way to get ENOSPC or EROFS for real as root.
/// Needs CAP_SYS_ADMIN; tests that use it are disabled where mounting is not allowed.
private enum Tmpfs {
    static let canMount: Bool = {
        guard geteuid() == 0 else { return false }
        var template = Array("/tmp/outbox-mount-probe-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { return false }
        let probe = String(cString: made)
        defer { rmdir(probe) }
        guard (try? mount(at: probe, kilobytes: 16)) != nil else { return false }
        unmount(probe)
        return true
    }()

    static func mount(at path: String, kilobytes: Int, readOnly: Bool = false) throws {
        if Glibc.mount("tmpfs", path, "tmpfs", readOnly ? UInt(MS_RDONLY) : 0, "size=\(kilobytes)k") != 0 {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
    }

    static func unmount(_ path: String) {
        umount2(path, Int32(MNT_DETACH))
    }
}

/// This test binary started again to run a single test, which finds the variables below
/// set and plays the child's part: so a scenario can be killed for real or given a
/// process-wide limit without touching the other tests.
private enum ChildProcess {
    static let directoryVariable = "OUTBOX_TEST_CHILD_DIRECTORY"
    static let progressVariable = "OUTBOX_TEST_CHILD_PROGRESS"

    /// Set when this process is a child.
    static let current: (directory: String, progress: String)? = {
        let environment = ProcessInfo.processInfo.environment
        guard let directory = environment[directoryVariable], let progress = environment[progressVariable] else {
            return nil
        }
        return (directory, progress)
    }()

    enum Status: Equatable {
        case exited(Int32)
        case signaled(Int32)
    }

    static func spawn(test: String, directory: String, progress: String, output: String) throws -> pid_t {
        var environment = ProcessInfo.processInfo.environment
        environment[directoryVariable] = directory
        environment[progressVariable] = progress
        let arguments = ["/proc/self/exe", "--testing-library", "swift-testing", "--filter", test]
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var pid: pid_t = 0
        let result = posix_spawn(&pid, "/proc/self/exe", &actions, nil, argv, envp)
        guard result == 0 else { throw POSIXError(POSIXErrorCode(rawValue: result) ?? .EIO) }
        return pid
    }

    /// The child's status if it has ended (reaping it), else nil.
    static func exitStatus(_ pid: pid_t) -> Status? {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == pid ? decode(status) : nil
    }

    static func wait(_ pid: pid_t) -> Status {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return decode(status)
    }

    /// WIFEXITED/WEXITSTATUS/WTERMSIG, which are macros Swift does not import.
    private static func decode(_ status: Int32) -> Status {
        let signal = status & 0x7F
        return signal == 0 ? .exited((status >> 8) & 0xFF) : .signaled(signal)
    }

    /// The number of entries the child has finished with, published after each one.
    static func progress(_ path: String) -> Int {
        guard let bytes = try? readBytes(path), bytes.count == 8 else { return 0 }
        return Int(bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
    }

    /// Appends until killed, acknowledging every fourth entry, never syncing.
    static func runKilledWriter(directory: String, progress: String) throws {
        let outbox = try Outbox(options: options(directory, sync: .interval(milliseconds: 60_000)))
        let progressFD = open(progress, O_WRONLY | O_CREAT, 0o644)
        for index in 0..<1_000_000 {
            let id = try outbox.append(payload(index))
            if index % 4 == 3 { try outbox.acknowledge(id) }
            var done = UInt64(index + 1).littleEndian
            _ = pwrite(progressFD, &done, 8, 0)
        }
        Issue.record("the parent never killed this child")
    }

    /// Appends until the file-size limit stops them, checks the outbox stays usable, lifts
    /// the limit and checks appends work again and everything survives a reopen.
    static func runFileSizeLimit(directory: String) throws {
        // Past the limit the kernel also sends SIGXFSZ, which would kill the process.
        signal(SIGXFSZ, SIG_IGN)
        let lines = LogLines()
        let outbox = try Outbox(options: options(directory, segmentBytes: 1 << 20), log: lines.sink)
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &limit)
        let original = limit
        limit.rlim_cur = 64 << 10
        #expect(setrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &limit) == 0)

        var ids: [UInt64] = []
        var failure: Outbox.OutboxError?
        while failure == nil && ids.count < 1000 {
            failure = caught { ids.append(try outbox.append(payload(ids.count, size: 1000))) }
        }
        guard case .io("write", _, EFBIG, let message) = failure else {
            Issue.record("expected EFBIG from write, got \(String(describing: failure))")
            return
        }
        #expect(message == "File too large")
        #expect(ids.count == (64 << 10) / 1017)
        // The part of the record that fit was cut off again.
        #expect(outbox.diskBytes == 8 + ids.count * 1017)
        #expect(outbox.diskBytes == segmentBytesOnDisk(directory))
        #expect(outbox.pendingEntries().map(\.id) == ids)
        try outbox.acknowledge(ids[0])  // 17 bytes still fit under the limit
        #expect(caught { _ = try outbox.append(payload(0, size: 1000)) } != nil)

        var restored = original
        #expect(setrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &restored) == 0)
        let more = try (0..<5).map { try outbox.append(payload(2000 + $0, size: 1000)) }
        outbox.close()

        let reopened = try Outbox(options: options(directory), log: lines.sink)
        defer { reopened.close() }
        #expect(reopened.pendingEntries().map(\.id) == Array(ids.dropFirst()) + more)
        #expect(lines.all.isEmpty, "a cut-short write leaves no torn record: \(lines.all)")
    }
}
