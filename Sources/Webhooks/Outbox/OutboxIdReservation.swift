import Support
import System

/// `outbox.meta`: a mark above every id ever handed out, moved up in blocks before
/// the ids are used. Segment names and records alone would let a restart reuse the
/// ids of entries a power loss took (under `.interval`) or of deleted segments, and a
/// receiver deduplicating on the id would then drop a different event.
///
/// Format, 20 bytes: "BRDGOBXM", the mark (UInt64 LE), CRC-32C of those 16 bytes (UInt32 LE).
/// Replaced through `DurableFile` (`outbox.meta.tmp`, fsync, rename, fsync of the
/// directory), so a crash leaves the old mark or the new one, never a torn file.
struct OutboxIdReservation {
    static let fileName = "outbox.meta"
    /// `DurableFile`'s temporary: a crash between its write and its rename leaves it behind.
    static let temporaryName = fileName + ".tmp"
    /// Ids reserved per write: one small synced write per 65,536 appends; a restart skips at most that many.
    static let block: UInt64 = 1 << 16
    private static let magic = Array("BRDGOBXM".utf8)

    /// Ids below this may have been handed out.
    private(set) var limit: UInt64

    init(limit: UInt64) {
        self.limit = limit
    }

    /// The stored mark; 0 when there is none, plus a note when the file was unreadable.
    static func load(from directory: OutboxDirectory) -> (limit: UInt64, problem: String?) {
        let path = directory.path(of: fileName)
        let bytes: [UInt8]
        do throws(SystemError) {
            guard let stored = try DurableFile.read(path) else { return (0, nil) }
            bytes = stored
        } catch {
            return (0, "\(OutboxError(error)); ids continue from the segments alone")
        }
        guard bytes.count == 20, Array(bytes[0..<8]) == magic,
              CRC32.castagnoli.checksum(Array(bytes[0..<16])) == littleEndian(UInt32.self, bytes, at: 16)
        else {
            return (0, "\(path): unreadable id mark (\(bytes.count) bytes); ids continue from the segments alone")
        }
        return (littleEndian(UInt64.self, bytes, at: 8), nil)
    }

    /// Makes sure `id` lies below the durable mark, moving the mark a block further if not.
    mutating func cover(_ id: UInt64, in directory: OutboxDirectory) throws(OutboxError) {
        guard id >= limit else { return }
        let newLimit = id + Self.block
        var bytes = Self.magic
        withUnsafeBytes(of: newLimit.littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: CRC32.castagnoli.checksum(bytes).littleEndian) { bytes.append(contentsOf: $0) }

        do throws(SystemError) {
            try DurableFile.write(directory.path(of: Self.fileName), bytes)
        } catch {
            throw OutboxError(error)
        }
        limit = newLimit
    }

    private static func littleEndian<T: FixedWidthInteger>(_: T.Type, _ bytes: [UInt8], at offset: Int) -> T {
        bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }
}
