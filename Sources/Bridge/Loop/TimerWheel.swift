/// A hashed timing wheel of connection deadlines. Each connection holds at most one deadline and
/// links itself into the slot's list through fields it owns (`timerSlot`, `timerPrev`, `timerNext`,
/// fds of neighbours), so scheduling allocates nothing and there is no timer object per connection.
/// A deadline further away than one turn of the wheel simply stays in its slot until its lap comes.
struct TimerWheel {
    static let slotCount: Int32 = 1024
    /// Head fd of each slot's list, -1 when empty.
    private var heads = [Int32](repeating: -1, count: Int(slotCount))
    /// The last tick whose slot has been processed.
    private var processedTick: UInt32

    init(now: UInt32) {
        processedTick = now
    }

    mutating func schedule(_ connection: Connection, at tick: UInt32, in table: ConnectionTable) {
        cancel(connection, in: table)
        let due = max(tick, processedTick &+ 1)
        connection.deadline = due
        let slot = Int32(due % UInt32(Self.slotCount))
        connection.timerSlot = slot
        connection.timerPrev = -1
        connection.timerNext = heads[Int(slot)]
        if connection.timerNext >= 0 {
            table[connection.timerNext]?.timerPrev = connection.fd
        }
        heads[Int(slot)] = connection.fd
    }

    mutating func cancel(_ connection: Connection, in table: ConnectionTable) {
        guard connection.timerSlot >= 0 else { return }
        if connection.timerPrev >= 0 {
            table[connection.timerPrev]?.timerNext = connection.timerNext
        } else {
            heads[Int(connection.timerSlot)] = connection.timerNext
        }
        if connection.timerNext >= 0 {
            table[connection.timerNext]?.timerPrev = connection.timerPrev
        }
        connection.timerSlot = -1
        connection.timerPrev = -1
        connection.timerNext = -1
    }

    /// Unlinks every connection whose deadline is at or before `now` and appends it to `expired`.
    /// The caller fires them afterwards, so a handler that reschedules cannot disturb the walk.
    mutating func advance(to now: UInt32, in table: ConnectionTable, expired: inout [Connection]) {
        var steps = 0
        while processedTick != now && steps < Int(Self.slotCount) {
            processedTick &+= 1
            steps += 1
            collect(slot: Int(processedTick % UInt32(Self.slotCount)), now: now, table: table, into: &expired)
        }
        // After a stall longer than a lap, every slot was visited once; catch up the clock.
        processedTick = now
    }

    private mutating func collect(slot: Int, now: UInt32, table: ConnectionTable, into expired: inout [Connection]) {
        var fd = heads[slot]
        while fd >= 0, let connection = table[fd] {
            fd = connection.timerNext
            if connection.deadline <= now {
                cancel(connection, in: table)
                expired.append(connection)
            }
        }
    }
}
