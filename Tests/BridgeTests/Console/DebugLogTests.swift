@testable import Bridge
import Support
import Synchronization
import Testing

@Suite struct DebugLogTests {
    /// A clock the test moves by hand.
    final class ManualClock: Sendable {
        let nanos = Atomic<UInt64>(1_000)
        func advance(seconds: Double) { nanos.add(UInt64(seconds * 1e9), ordering: .relaxed) }
        var read: @Sendable () -> UInt64 { { self.nanos.load(ordering: .relaxed) } }
    }

    @Test func recordsNothingUntilAConsoleWatches() {
        let log = DebugLog(clock: ManualClock().read)
        log.record(.apiMessage, channel: "c", event: "e", data: "{}")
        #expect(!log.isRecording)
        #expect(log.entries(after: 0).entries.isEmpty && log.entries(after: 0).last == 0)
    }

    @Test func unwatchedHooksBuildNoStrings() {
        let log = DebugLog(clock: ManualClock().read)
        var evaluated = false
        func expensive() -> String { evaluated = true; return "x" }
        log.record(.clientEvent, data: expensive())
        #expect(!evaluated)
    }

    @Test func recordsWhileWatchedAndStopsAfterTheWindow() {
        let clock = ManualClock()
        let log = DebugLog(watchWindowNanos: 60_000_000_000, clock: clock.read)
        log.watch()
        log.record(.subscribed, channel: "a", detail: "socket 1.2")
        clock.advance(seconds: 59)
        log.record(.unsubscribed, channel: "a")
        clock.advance(seconds: 2)
        #expect(!log.isRecording)
        log.record(.subscribed, channel: "late")
        let (entries, last) = log.entries(after: 0)
        #expect(entries.map(\.kind) == [.subscribed, .unsubscribed])
        #expect(entries[0].channel == "a" && entries[0].detail == "socket 1.2" && entries[0].event == nil)
        #expect(last == 2)
        log.watch()
        #expect(log.isRecording)
    }

    @Test func sequenceNumbersIncreaseAndAfterSkipsWhatWasSeen() {
        let log = DebugLog(clock: ManualClock().read)
        log.watch()
        for index in 1...5 { log.record(.apiMessage, event: "e\(index)") }
        #expect(log.entries(after: 0).entries.map(\.seq) == [1, 2, 3, 4, 5])
        let (rest, last) = log.entries(after: 3)
        #expect(rest.map(\.event) == ["e4", "e5"] && last == 5)
        #expect(log.entries(after: 5).entries.isEmpty)
        // A client ahead of the log (the server restarted) learns the real last number.
        #expect(log.entries(after: 99) == ([], 5))
    }

    @Test func theRingKeepsTheNewestEntriesInOrder() {
        let log = DebugLog(capacity: 3, clock: ManualClock().read)
        log.watch()
        for index in 1...7 { log.record(.clientEvent, event: "e\(index)") }
        let (entries, last) = log.entries(after: 0)
        #expect(entries.map(\.seq) == [5, 6, 7])
        #expect(entries.map(\.event) == ["e5", "e6", "e7"])
        #expect(last == 7)
        #expect(log.entries(after: 6).entries.map(\.seq) == [7])
    }

    @Test func longDataIsCutOnACharacterBoundary() {
        let log = DebugLog(clock: ManualClock().read)
        log.watch()
        // "é" is two bytes: the byte limit falls inside one of them.
        let data = "a" + String(repeating: "é", count: DebugLog.maxDataBytes)
        log.record(.apiMessage, data: data)
        let stored = log.entries(after: 0).entries[0].data!
        #expect(stored.hasSuffix("…"))
        #expect(stored.utf8.count <= DebugLog.maxDataBytes + "…".utf8.count)
        #expect(stored.dropLast().allSatisfy { $0 == "a" || $0 == "é" })
        #expect(DebugLog.truncated("short") == "short")
    }

    @Test func channelEventsBecomeEntriesButCountsDoNot() {
        let log = DebugLog(clock: ManualClock().read)
        log.watch()
        log.record(ChannelEvent.channelOccupied(channel: "presence-r"))
        log.record(ChannelEvent.memberAdded(channel: "presence-r", userID: "u1"))
        log.record(ChannelEvent.subscriptionCount(channel: "presence-r", count: 3))
        log.record(ChannelEvent.clientEvent(channel: "private-c", event: "client-x", data: #"{"a":1}"#, socketID: "1.2", userID: nil))
        let entries = log.entries(after: 0).entries
        #expect(entries.map(\.kind) == [.channelOccupied, .memberAdded, .clientEvent])
        #expect(entries[1].detail == "user u1")
        #expect(entries[2].event == "client-x" && entries[2].data == #"{"a":1}"# && entries[2].detail == "socket 1.2")
    }

    @Test func entryJSONLeavesOutWhatIsMissingAndEscapes() {
        let entry = DebugLog.Entry(seq: 4, timeMs: 1700, kind: .apiMessage, channel: "c", event: nil,
                                   data: "say \"hi\"\n", detail: nil)
        var json = JSONWriter()
        entry.write(to: &json)
        #expect(json.text == #"{"seq":4,"time_ms":1700,"type":"api_message","channel":"c","data":"say \"hi\"\n"}"#)
    }
}
