import Glibc
import System

typealias OutboxError = Outbox.OutboxError

extension Outbox.OutboxError {
    /// The `.io` error for a failed system call on `error.path`.
    init(_ error: SystemError) {
        self = .io(operation: error.call, path: error.path ?? "", errno: error.errno, message: error.message)
    }

    /// An `.io` error for a failed system call, with errno's text.
    static func posix(_ operation: String, _ path: String, _ code: Int32) -> Self {
        Self(SystemError(operation, path: path, errno: code))
    }
}

/// A regular file descriptor and the few calls the outbox makes on it, each failure
/// turned into `OutboxError.io` naming the call and the path.
struct OutboxFile {
    let path: String
    let fd: Int32

    /// New files are private to the owner: webhook payloads can carry user data.
    static func open(_ path: String, flags: Int32, mode: mode_t = 0o600) throws(OutboxError) -> OutboxFile {
        do throws(SystemError) {
            let fd = try Syscall.retrying("open", path: path) { Glibc.open(path, flags | O_CLOEXEC, mode) }
            return OutboxFile(path: path, fd: fd)
        } catch {
            throw OutboxError(error)
        }
    }

    /// The whole content of the file at `path`.
    static func read(_ path: String) throws(OutboxError) -> [UInt8] {
        let file = try open(path, flags: O_RDONLY)
        defer { file.close() }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(try file.size())
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count: Int
            do throws(SystemError) {
                count = try Syscall.retrying("read", path: path) {
                    chunk.withUnsafeMutableBytes { Glibc.read(file.fd, $0.baseAddress, $0.count) }
                }
            } catch {
                throw OutboxError(error)
            }
            if count == 0 { return bytes }
            bytes.append(contentsOf: chunk[..<count])
        }
    }

    /// Writes all of `bytes` at `offset`: one pwrite(2) unless the kernel cuts it short,
    /// which on a regular file happens only when space runs out, and then the next call fails.
    func write(_ bytes: [UInt8], at offset: Int) throws(OutboxError) {
        var written = 0
        while written < bytes.count {
            let count: Int
            do throws(SystemError) {
                count = try Syscall.retrying("write", path: path) {
                    bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + written, $0.count - written, off_t(offset + written)) }
                }
            } catch {
                throw OutboxError(error)
            }
            // A zero-byte write would repeat forever; no regular file does it, but never loop on faith.
            if count == 0 { throw .posix("write", path, EIO) }
            written += count
        }
    }

    func syncData() throws(OutboxError) {
        if fdatasync(fd) != 0 { throw .posix("fdatasync", path, errno) }
    }

    func truncate(to size: Int) throws(OutboxError) {
        if ftruncate(fd, off_t(size)) != 0 { throw .posix("ftruncate", path, errno) }
    }

    func size() throws(OutboxError) -> Int {
        var status = stat()
        if fstat(fd, &status) != 0 { throw .posix("fstat", path, errno) }
        return Int(status.st_size)
    }

    func close() {
        // Linux releases the descriptor even when close reports EINTR or EIO, so there is nothing to retry.
        _ = Glibc.close(fd)
    }
}
