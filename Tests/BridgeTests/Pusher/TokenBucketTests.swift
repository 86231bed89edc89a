import Testing
@testable import Bridge

struct TokenBucketTests {
    /// How many of `tries` takes at `now` succeed.
    private func taken(_ bucket: inout TokenBucket, _ tries: Int, at now: Double) -> Int {
        var count = 0
        for _ in 0..<tries where bucket.take(now: now) { count += 1 }
        return count
    }

    @Test func aBurstPassesThenTheRate() {
        var bucket = TokenBucket(rate: 5, burst: 50, now: 100)
        #expect(taken(&bucket, 51, at: 100) == 50)
        #expect(taken(&bucket, 2, at: 100.2) == 1)  // one token back after 1/5 s
        #expect(taken(&bucket, 10, at: 101.2) == 5)
    }

    @Test func idleTimeRefillsNoMoreThanTheBurst() {
        var bucket = TokenBucket(rate: 1, burst: 3, now: 0)
        #expect(taken(&bucket, 3, at: 0) == 3)
        #expect(taken(&bucket, 10, at: 1_000_000) == 3)
    }

    @Test func aClockGoingBackGivesNothing() {
        var bucket = TokenBucket(rate: 10, burst: 1, now: 50)
        #expect(taken(&bucket, 1, at: 50) == 1)
        #expect(taken(&bucket, 1, at: 10) == 0)
        #expect(taken(&bucket, 1, at: 50) == 0)
    }
}
