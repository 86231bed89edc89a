import Foundation
import Glibc
import Synchronization
import System
import Testing

/// How many times the test's SIGUSR2 handler ran; a C signal handler cannot capture context.
private let signalsHandled = Atomic<Int>(0)

@Suite(.serialized) struct SyscallTests {
    @Test func interruptedCallsAreRetriedUntilTheyComplete() throws {
        var calls = 0
        let result = try Syscall.retrying("read") { () -> Int in
            calls += 1
            if calls < 3 {
                errno = EINTR
                return -1
            }
            return 7
        }
        #expect(result == 7)
        #expect(calls == 3)
    }

    @Test func otherFailuresAreThrownAtOnce() {
        var calls = 0
        #expect(throws: SystemError("write", path: "/tmp/x", errno: ENOSPC)) {
            try Syscall.retrying("write", path: "/tmp/x") { () -> Int in
                calls += 1
                errno = ENOSPC
                return -1
            }
        }
        #expect(calls == 1)
    }

    /// A real signal, installed without SA_RESTART, interrupts a blocking read of an empty pipe;
    /// the wrapper must go back to reading rather than fail with EINTR.
    @Test func aSignalDuringABlockingReadIsRetried() throws {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in signalsHandled.add(1, ordering: .relaxed) }
        action.sa_flags = 0
        sigemptyset(&action.sa_mask)
        var previous = sigaction()
        #expect(sigaction(SIGUSR2, &action, &previous) == 0)
        defer { sigaction(SIGUSR2, &previous, nil) }
        // Test threads may run with signals blocked; this one must take SIGUSR2.
        var unblock = sigset_t()
        var oldMask = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGUSR2)
        #expect(pthread_sigmask(SIG_UNBLOCK, &unblock, &oldMask) == 0)
        defer { pthread_sigmask(SIG_SETMASK, &oldMask, nil) }

        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        let reader = pthread_self()
        let writer = fds[1]
        let before = signalsHandled.load(ordering: .relaxed)
        Thread.detachNewThread {
            for _ in 0..<10 {
                usleep(20_000)
                pthread_kill(reader, SIGUSR2)
            }
            var byte: UInt8 = 42
            _ = write(writer, &byte, 1)
        }
        var calls = 0
        var buffer: UInt8 = 0
        let count = try Syscall.retrying("read") { () -> Int in
            calls += 1
            return read(fds[0], &buffer, 1)
        }
        #expect(count == 1)
        #expect(buffer == 42)
        #expect(signalsHandled.load(ordering: .relaxed) > before)
        #expect(calls > 1, "no read was interrupted, so nothing was retried")
    }

    @Test func anEmptyNonBlockingDescriptorWouldBlock() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        var buffer = [UInt8](repeating: 0, count: 16)
        let empty = try buffer.withUnsafeMutableBytes { try Syscall.read(fds[0], into: $0) }
        #expect(empty == .wouldBlock)

        var bytes: [UInt8] = [1, 2, 3]
        #expect(write(fds[1], &bytes, 3) == 3)
        let full = try buffer.withUnsafeMutableBytes { try Syscall.read(fds[0], into: $0) }
        #expect(full == .done(3))
        #expect(Array(buffer[..<3]) == bytes)
    }

    @Test func aClosedDescriptorIsAnErrorNotWouldBlock() {
        var buffer = [UInt8](repeating: 0, count: 16)
        #expect(throws: SystemError("read", errno: EBADF)) {
            try buffer.withUnsafeMutableBytes { try Syscall.read(-1, into: $0) }
        }
    }
}
