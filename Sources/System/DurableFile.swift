import Glibc

/// Small state files that must survive a crash whole: written to `<path>.tmp`, fsynced, renamed
/// over the old one, and the directory fsynced, so a reader sees the old or the new content,
/// never a mix. Used by the broker's organization store and seed key, and the outbox's id mark.
public enum DurableFile {
    /// The file's bytes; nil when it does not exist.
    public static func read(_ path: String) throws(SystemError) -> [UInt8]? {
        let fd: Int32
        do throws(SystemError) {
            fd = try Syscall.retrying("open", path: path) { open(path, O_RDONLY | O_CLOEXEC) }
        } catch {
            if error.errno == ENOENT { return nil }
            throw error
        }
        defer { close(fd) }
        var content: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = try Syscall.retrying("read", path: path) {
                chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            }
            if n == 0 { return content }
            content += chunk[..<n]
        }
    }

    public static func write(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws(SystemError) {
        let temporary = path + ".tmp"
        let fd = try Syscall.retrying("open", path: temporary) { open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode) }
        do throws(SystemError) {
            try writeAll(fd, bytes, path: temporary)
            guard fsync(fd) == 0 else { throw SystemError("fsync", path: temporary) }
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw SystemError("rename", path: temporary) }
        try syncDirectory(of: path)
    }

    /// Writes all of `bytes` at the descriptor's offset, however many calls that takes.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(SystemError) {
        var written = 0
        while written < bytes.count {
            let n = try Syscall.retrying("write", path: path) {
                bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            }
            // A zero-byte write would repeat forever; no regular file does it, but never loop on faith.
            if n == 0 { throw SystemError("write", path: path, errno: EIO) }
            written += n
        }
    }

    /// Identity of the file's current content as far as `stat` tells (inode, size, mtime): a
    /// rename over it changes the inode, so writers elsewhere are noticed.
    public static func fingerprint(_ path: String) -> [Int]? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return [Int(info.st_ino), Int(info.st_size), Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec)]
    }

    /// Runs `body` holding an exclusive flock on `lockPath` (created if missing), so that two
    /// processes (the server and the CLI) never interleave read-modify-write cycles.
    public static func withLock<T, E: Error>(_ lockPath: String, _ body: () throws(E) -> T) throws(SystemError) -> Result<T, E> {
        let fd = try Syscall.retrying("open", path: lockPath) { open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600) }
        defer { close(fd) }
        _ = try Syscall.retrying("flock", path: lockPath) { flock(fd, LOCK_EX) }
        defer { flock(fd, LOCK_UN) }
        do throws(E) {
            return .success(try body())
        } catch {
            return .failure(error)
        }
    }

    /// Makes a create, rename or unlink of `path` durable: fsync of its directory.
    public static func syncDirectory(of path: String) throws(SystemError) {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let target = directory.isEmpty ? "/" : directory
        let fd = try Syscall.retrying("open", path: target) { open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw SystemError("fsync", path: target) }
    }

    /// `mkdir -p`, owner-only (0700): an existing component is fine; a file in the way shows up
    /// when the directory is opened (ENOTDIR).
    public static func makeDirectory(_ path: String) throws(SystemError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST { throw SystemError("mkdir", path: prefix) }
        }
    }
}
