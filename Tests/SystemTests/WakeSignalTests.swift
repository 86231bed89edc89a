import Foundation
import Glibc
import System
import Testing

@Suite struct WakeSignalTests {
    private func readable(_ signal: WakeSignal, timeoutMs: Int32) -> Bool {
        var entry = pollfd(fd: signal.fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, timeoutMs) == 1 && entry.revents & Int16(POLLIN) != 0
    }

    @Test func aWakeFromAnotherThreadEndsAPoll() throws {
        let signal = try WakeSignal()
        #expect(!readable(signal, timeoutMs: 0))
        Thread.detachNewThread {
            usleep(50_000)
            signal.wake()
        }
        let started = MonotonicClock.milliseconds
        #expect(readable(signal, timeoutMs: 10_000))
        #expect(MonotonicClock.milliseconds - started < 5_000)
    }

    @Test func drainingResetsTheSignalAndWakesAddUp() throws {
        let signal = try WakeSignal()
        signal.wake()
        signal.wake()
        #expect(readable(signal, timeoutMs: 0))
        signal.drain()
        #expect(!readable(signal, timeoutMs: 0))
    }
}
