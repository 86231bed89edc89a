import Glibc
import System

/// The outbox directory: created on demand, locked against a second writer, and
/// fsynced after every create and unlink so those survive a power loss.
struct OutboxDirectory {
    let path: String
    private let handle: OutboxFile

    /// Creates the directory (and missing parents), opens and locks it.
    static func open(_ path: String) throws(OutboxError) -> OutboxDirectory {
        do throws(SystemError) {
            try DurableFile.makeDirectory(path)
        } catch {
            throw OutboxError(error)
        }
        let handle = try OutboxFile.open(path, flags: O_RDONLY | O_DIRECTORY)
        // Two writers would interleave records in one file. flock dies with the process,
        // so a kill -9 never leaves a stale lock behind.
        if let code = lock(handle.fd) {
            handle.close()
            if code == EWOULDBLOCK {
                throw .io(operation: "flock", path: path, errno: code,
                          message: "another Outbox has this directory open")
            }
            throw .posix("flock", path, code)
        }
        return OutboxDirectory(path: path, handle: handle)
    }

    func path(of name: String) -> String {
        path + "/" + name
    }

    /// Names of the entries in the directory, "." and ".." left out.
    func fileNames() throws(OutboxError) -> [String] {
        guard let stream = opendir(path) else { throw .posix("opendir", path, errno) }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { tuple in
                tuple.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: tuple.pointee)) {
                    String(cString: $0)
                }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Makes creates, renames and unlinks in the directory durable.
    func sync() throws(OutboxError) {
        if fsync(handle.fd) != 0 { throw .posix("fsync", path, errno) }
    }

    func unlink(_ name: String) throws(OutboxError) {
        if Glibc.unlink(path(of: name)) != 0 { throw .posix("unlink", path(of: name), errno) }
    }

    /// Releases the lock too.
    func close() {
        handle.close()
    }

    /// Takes the exclusive lock; nil on success, else errno. A process forking at the
    /// wrong moment holds a copy of every descriptor, lock included, until its exec
    /// closes them, so a closed outbox's lock can linger for a few milliseconds: a
    /// conflict is retried for half a second before it counts.
    private static func lock(_ fd: Int32) -> Int32? {
        for _ in 0..<50 {
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { return nil }
            let code = errno
            if code != EWOULDBLOCK && code != EINTR { return code }
            usleep(10_000)
        }
        return EWOULDBLOCK
    }
}
