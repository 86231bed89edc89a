import Glibc

/// Milliseconds on CLOCK_MONOTONIC: deadlines that wall-clock changes cannot move.
enum MonotonicClock {
    static func nowMs() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
    }
}
