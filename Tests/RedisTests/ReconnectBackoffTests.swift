@testable import Redis
import Testing

@Suite struct ReconnectBackoffTests {
    /// The ranges the delays of `failures` consecutive failures are picked from.
    private func ranges(initialMs: Int, maxMs: Int, failures: Int) -> [ClosedRange<Int>] {
        var backoff = ReconnectBackoff(initialMs: initialMs, maxMs: maxMs)
        var ranges: [ClosedRange<Int>] = []
        for _ in 0..<failures {
            _ = backoff.nextDelayMs { range in
                ranges.append(range)
                return range.upperBound
            }
        }
        return ranges
    }

    @Test func doublesUpToTheCapWithJitterInTheUpperHalf() {
        #expect(ranges(initialMs: 100, maxMs: 1000, failures: 6) == [50...100, 100...200, 200...400, 400...800, 500...1000, 500...1000])
    }

    @Test func theDefaultPickStaysInTheRange() {
        var backoff = ReconnectBackoff(initialMs: 100, maxMs: 100)
        for _ in 0..<200 {
            #expect((50...100).contains(backoff.nextDelayMs()))
        }
    }

    @Test func aSuccessStartsAgainFromTheFirstDelay() {
        var backoff = ReconnectBackoff(initialMs: 100, maxMs: 10_000)
        for _ in 0..<10 { _ = backoff.nextDelayMs { $0.lowerBound } }
        #expect(backoff.failures == 10)
        backoff.reset()
        #expect(backoff.nextDelayMs { $0.upperBound } == 100)
    }

    @Test func manyFailuresDoNotOverflow() {
        #expect(ranges(initialMs: 1 << 40, maxMs: .max, failures: 100).last == (Int.max / 2)...Int.max)
    }

    @Test func nonsenseSettingsAreClamped() {
        let backoff = ReconnectBackoff(initialMs: 0, maxMs: -5)
        #expect(backoff.initialMs == 1 && backoff.maxMs == 1)
    }
}
