import Glibc

/// CLOCK_MONOTONIC, the one clock of every deadline, timeout and rate window: wall-clock
/// changes cannot move it. Its zero is arbitrary (boot), so only differences mean anything.
public enum MonotonicClock {
    public static var nanoseconds: UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    public static var milliseconds: Int64 { Int64(nanoseconds / 1_000_000) }

    public static var seconds: Double { Double(nanoseconds) / 1e9 }
}
