import Glibc

/// One segment file, `outbox-<16 hex digits>.log`: an 8-byte header ("BRDGOBX" and
/// format version 1), then records. The hex digits are the segment's base: every entry
/// appended to it (rather than copied into it by compaction) has an id at least that
/// large, and bases grow strictly in creation order, so sorting names sorts segments
/// oldest first.
struct OutboxSegment {
    static let header: [UInt8] = Array("BRDGOBX".utf8) + [1]
    private static let prefix = "outbox-"
    private static let suffix = ".log"

    let base: UInt64
    let name: String
    /// Open while appends go here; nil once sealed.
    var file: OutboxFile?
    var size: Int
    /// Pending entries whose newest copy is in this segment, and the bytes of those records.
    var liveCount = 0
    var liveBytes = 0
    /// An fdatasync of this file failed: Linux may have dropped the dirty pages while
    /// reads still show them, so its live entries must be rewritten elsewhere.
    var suspect = false

    init(base: UInt64, size: Int, file: OutboxFile? = nil) {
        self.base = base
        self.name = Self.name(base: base)
        self.size = size
        self.file = file
    }

    static func name(base: UInt64) -> String {
        let hex = String(base, radix: 16)
        return prefix + String(repeating: "0", count: max(0, 16 - hex.count)) + hex + suffix
    }

    /// The base a segment file name carries, or nil for any other file.
    static func base(fromName name: String) -> UInt64? {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
        let hex = name.dropFirst(prefix.count).dropLast(suffix.count)
        // Exactly the names `name(base:)` makes, so reading a segment back finds the file.
        guard hex.count == 16, let base = UInt64(hex, radix: 16), base <= OutboxRecord.maxId,
              Self.name(base: base) == name else { return nil }
        return base
    }

    /// A new, empty segment whose header and directory entry are on disk.
    static func create(in directory: OutboxDirectory, base: UInt64) throws(OutboxError) -> OutboxSegment {
        let name = name(base: base)
        // O_TRUNC rather than O_EXCL: the name can only be held by the leftover of a
        // creation that failed, since bases exceed those of every segment in use.
        let file = try OutboxFile.open(directory.path(of: name), flags: O_RDWR | O_CREAT | O_TRUNC)
        do {
            try file.write(header, at: 0)
            try file.syncData()
            try directory.sync()
        } catch {
            file.close()
            try? directory.unlink(name)
            throw error
        }
        return OutboxSegment(base: base, size: header.count, file: file)
    }

    /// Stops appends to this segment.
    mutating func seal() {
        file?.close()
        file = nil
    }
}
