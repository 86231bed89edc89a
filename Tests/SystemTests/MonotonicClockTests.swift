import Glibc
import System
import Testing

@Suite struct MonotonicClockTests {
    @Test func readingsNeverGoBackwards() {
        var last = MonotonicClock.nanoseconds
        for _ in 0..<100_000 {
            let now = MonotonicClock.nanoseconds
            #expect(now >= last)
            if now < last { return }
            last = now
        }
    }

    @Test func aSleepShowsUpInEveryUnit() {
        let nanoseconds = MonotonicClock.nanoseconds
        let milliseconds = MonotonicClock.milliseconds
        let seconds = MonotonicClock.seconds
        usleep(30_000)
        #expect(MonotonicClock.nanoseconds - nanoseconds >= 30_000_000)
        #expect(MonotonicClock.milliseconds - milliseconds >= 30)
        #expect(MonotonicClock.seconds - seconds >= 0.030)
    }

    @Test func theUnitsReadTheSameClock() {
        let milliseconds = MonotonicClock.milliseconds
        let nanoseconds = MonotonicClock.nanoseconds
        let seconds = MonotonicClock.seconds
        #expect(abs(Int64(nanoseconds / 1_000_000) - milliseconds) < 1_000)
        #expect(abs(Double(milliseconds) / 1_000 - seconds) < 1)
    }
}
