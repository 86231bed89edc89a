import Glibc
import Synchronization
import System

/// `organizations.json` in the data directory, shared by the server and the CLI. Every change is
/// a read-modify-write under an flock, written atomically (DurableFile), so the two never lose
/// each other's changes; the server notices changes made elsewhere by `reloadIfChanged`.
/// A file that does not parse stops whoever reads it: it is never reset.
public final class OrganizationStore: Sendable {
    public let path: String
    private let lockPath: String
    private let state: Mutex<(directory: OrganizationDirectory, fingerprint: [Int]?)>

    public init(dataDir: String) throws(OrganizationError) {
        path = dataDir + "/organizations.json"
        lockPath = dataDir + "/organizations.lock"
        do {
            try DurableFile.makeDirectory(dataDir)
        } catch {
            throw OrganizationError(.storage, "cannot create \(dataDir): \(error)")
        }
        let fingerprint = DurableFile.fingerprint(path)
        let directory = try Self.read(path)
        state = Mutex((directory, fingerprint))
        if directory.upgradedOnLoad { try writeUpgrade() }
    }

    public var directory: OrganizationDirectory { state.withLock { $0.directory } }

    /// Re-reads the file when its fingerprint changed (another process wrote it). Returns true
    /// when it did; a file that no longer parses is reported and the current content kept.
    public func reloadIfChanged() throws(OrganizationError) -> Bool {
        let fingerprint = DurableFile.fingerprint(path)
        guard fingerprint != state.withLock({ $0.fingerprint }) else { return false }
        do {
            let directory = try Self.read(path)
            state.withLock { $0 = (directory, fingerprint) }
            if directory.upgradedOnLoad { try writeUpgrade() }
            return true
        } catch {
            // Reported once per change of the file, not on every poll.
            state.withLock { $0.fingerprint = fingerprint }
            throw error
        }
    }

    /// Applies `change` to the latest content on disk and writes the result; nothing is written
    /// when `change` throws.
    public func update<T>(_ change: (inout OrganizationDirectory) throws(OrganizationError) -> T) throws(OrganizationError) -> T {
        let outcome: Result<T, OrganizationError>
        do {
            outcome = try DurableFile.withLock(lockPath) { () throws(OrganizationError) -> T in
                var directory = try Self.read(path)
                let result = try change(&directory)
                do {
                    try DurableFile.write(path, directory.encoded())
                } catch {
                    throw OrganizationError(.storage, "cannot write \(path): \(error)")
                }
                state.withLock { $0 = (directory, DurableFile.fingerprint(path)) }
                return result
            }
        } catch {
            throw OrganizationError(.storage, "cannot lock \(lockPath): \(error)")
        }
        return try outcome.get()
    }

    /// Writes back a file from before epochs and counters with the ones made up on load: until
    /// then each read draws other epochs, and JWTs issued meanwhile would not survive the next.
    private func writeUpgrade() throws(OrganizationError) {
        _ = try update { _ throws(OrganizationError) in }
    }

    private static func read(_ path: String) throws(OrganizationError) -> OrganizationDirectory {
        let bytes: [UInt8]?
        do {
            bytes = try DurableFile.read(path)
        } catch {
            throw OrganizationError(.storage, "cannot read \(path): \(error)")
        }
        guard let bytes else { return OrganizationDirectory() }
        do {
            return try OrganizationDirectory.decode(bytes)
        } catch {
            throw OrganizationError(.storage, "cannot load \(path): \(error.message)")
        }
    }
}
