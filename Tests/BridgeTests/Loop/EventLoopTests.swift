@testable import Bridge
import Dispatch
import Glibc
import Synchronization
import Testing

/// Collects values from the loop's thread for the test to read.
private final class Record: Sendable {
    private let values = Mutex<[String]>([])

    func add(_ value: String) { values.withLock { $0.append(value) } }
    var all: [String] { values.withLock { $0 } }

    /// Waits (up to 5 s) until `count` values arrived.
    func wait(for count: Int) -> [String] {
        for _ in 0..<500 {
            let taken = all
            if taken.count >= count { return taken }
            usleep(10_000)
        }
        return all
    }
}

@Suite struct EventLoopTests {
    private func startLoop(_ configure: (inout ServerConfig) -> Void = { _ in }) throws -> (Server, EventLoop, Int) {
        var config = ServerConfig()
        config.host = "127.0.0.1"
        config.port = 0
        config.threads = 1
        configure(&config)
        let server = Server(config: config)
        server.route("GET", "/a", .http { _, _ in .json(200, "{}") })
        let port = try server.start()
        return (server, server.loops.loops[0], port)
    }

    @Test func executeFromAnotherThreadRunsOnTheLoop() throws {
        let (_, loop, _) = try startLoop()
        let record = Record()
        #expect(!loop.inLoop)
        loop.execute { loop in record.add(loop.inLoop ? "on the loop" : "elsewhere") }
        #expect(record.wait(for: 1) == ["on the loop"])
    }

    @Test func onTheLoopExecuteRunsInlineAndEnqueueWaitsItsTurn() throws {
        let (_, loop, _) = try startLoop()
        let record = Record()
        loop.execute { loop in
            record.add("task begins")
            loop.enqueue { _ in record.add("enqueued first") }
            loop.execute { _ in record.add("executed inline") }
            loop.enqueue { _ in record.add("enqueued second") }
            record.add("task ends")
        }
        #expect(record.wait(for: 5) == ["task begins", "executed inline", "task ends", "enqueued first", "enqueued second"])
    }

    @Test func aTaskTheLoopQueuesForItselfRunsInTheSameTurn() throws {
        let (_, loop, _) = try startLoop()
        let record = Record()
        loop.execute { loop in
            let turn = loop.turn
            loop.enqueue { loop in
                record.add(loop.turn == turn ? "same turn" : "turn \(loop.turn - turn) later")
                // What that task queues runs at once too, in the next turn (the loop wakes itself).
                loop.enqueue { loop in record.add(loop.turn == turn + 1 ? "next turn" : "turn \(loop.turn - turn) later") }
            }
        }
        #expect(record.wait(for: 2) == ["same turn", "next turn"])
    }

    @Test func enqueuedTasksKeepTheirOrderAcrossTurns() throws {
        let (_, loop, _) = try startLoop()
        let record = Record()
        for index in 0..<200 {
            loop.enqueue { _ in record.add("\(index)") }
            if index % 50 == 0 { usleep(2_000) }
        }
        #expect(record.wait(for: 200) == (0..<200).map { "\($0)" })
    }

    @Test func tickHandlersRunAsTheClockAdvances() throws {
        let (_, loop, _) = try startLoop()
        let record = Record()
        loop.execute { loop in
            let start = loop.now
            loop.onTick { loop in
                if loop.now > start, record.all.count < 3 { record.add("\(loop.now - start)") }
            }
        }
        let ticks = record.wait(for: 3).compactMap { UInt32($0) }
        #expect(ticks.count == 3)
        #expect(ticks == ticks.sorted())
    }

    @Test func ticksCoverTheSecondsAndStayInRange() {
        #expect(EventLoop.ticks(0) == 1)
        #expect(EventLoop.ticks(0.1) == 1)
        #expect(EventLoop.ticks(0.25) == 3)
        #expect(EventLoop.ticks(30) == 300)
        #expect(EventLoop.ticks(1e12) == UInt32.max / 2)
    }

    @Test func anIdleKeepAliveConnectionIsClosedAtItsDeadline() throws {
        let (_, _, port) = try startLoop { $0.keepAliveTimeout = 0.3 }
        let client = try TestClient(port: port)
        client.send("GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(client.readHead().hasPrefix("HTTP/1.1 200"))
        _ = client.read(exactly: 2)
        var clock = timespec()
        clock_gettime(CLOCK_MONOTONIC, &clock)
        let started = Double(clock.tv_sec) + Double(clock.tv_nsec) / 1e9
        // The server closes: the read ends with nothing, well before the client's 5 s timeout.
        #expect(client.read(exactly: 1).isEmpty)
        clock_gettime(CLOCK_MONOTONIC, &clock)
        let waited = Double(clock.tv_sec) + Double(clock.tv_nsec) / 1e9 - started
        #expect(waited > 0.15 && waited < 2)
    }

    @Test func aRequestThatStallsGets408() throws {
        let (_, _, port) = try startLoop { $0.requestTimeout = 0.3 }
        let client = try TestClient(port: port)
        client.send("GET /a HTTP/1.1\r\nHo")
        #expect(client.readHead().hasPrefix("HTTP/1.1 408"))
    }
}
