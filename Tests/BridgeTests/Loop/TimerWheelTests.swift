@testable import Bridge
import Testing

@Suite struct TimerWheelTests {
    /// Connections need a loop only for their owner reference; the wheel never touches it.
    private func makeConnections(_ count: Int) throws -> (ConnectionTable, [Connection], EventLoop) {
        let server = ServerContext(config: ServerConfig(), router: Router<Endpoint>())
        let loop = try EventLoop(index: 0, group: LoopGroup(maxConnections: 10), server: server)
        let table = ConnectionTable(capacity: 64)
        let connections = (0..<count).map { Connection(fd: Int32(100 + $0), generation: 1, id: UInt64($0), loop: loop, counted: false) }
        connections.forEach(table.insert)
        return (table, connections, loop)
    }

    @Test func expiresExactlyTheDueConnections() throws {
        let (table, connections, loop) = try makeConnections(5)
        _ = loop
        var wheel = TimerWheel(now: 0)
        for (index, connection) in connections.enumerated() {
            wheel.schedule(connection, at: UInt32(10 * (index + 1)), in: table)
        }
        var expired: [Connection] = []
        wheel.advance(to: 25, in: table, expired: &expired)
        #expect(expired.map(\.fd) == [100, 101])
        expired.removeAll()
        wheel.advance(to: 50, in: table, expired: &expired)
        #expect(Set(expired.map(\.fd)) == [102, 103, 104])
    }

    @Test func rescheduleAndCancelUnlink() throws {
        let (table, connections, loop) = try makeConnections(3)
        _ = loop
        var wheel = TimerWheel(now: 0)
        for connection in connections { wheel.schedule(connection, at: 5, in: table) }
        wheel.schedule(connections[1], at: 100, in: table)
        wheel.cancel(connections[2], in: table)
        var expired: [Connection] = []
        wheel.advance(to: 10, in: table, expired: &expired)
        #expect(expired.map(\.fd) == [100])
        expired.removeAll()
        wheel.advance(to: 100, in: table, expired: &expired)
        #expect(expired.map(\.fd) == [101])
    }

    @Test func deadlinesBeyondOneLapWaitForTheirLap() throws {
        let (table, connections, loop) = try makeConnections(1)
        _ = loop
        var wheel = TimerWheel(now: 0)
        let far = UInt32(TimerWheel.slotCount) * 2 + 7
        wheel.schedule(connections[0], at: far, in: table)
        var expired: [Connection] = []
        for tick in stride(from: UInt32(1), to: far, by: 1) {
            wheel.advance(to: tick, in: table, expired: &expired)
        }
        #expect(expired.isEmpty)
        wheel.advance(to: far, in: table, expired: &expired)
        #expect(expired.count == 1)
    }

    @Test func aPastDeadlineFiresOnTheNextTick() throws {
        let (table, connections, loop) = try makeConnections(1)
        _ = loop
        var wheel = TimerWheel(now: 50)
        wheel.schedule(connections[0], at: 10, in: table)
        var expired: [Connection] = []
        wheel.advance(to: 51, in: table, expired: &expired)
        #expect(expired.count == 1)
    }
}
