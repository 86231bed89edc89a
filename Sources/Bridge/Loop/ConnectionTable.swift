/// The loop's live connections, indexed by fd: fds are small dense integers, so an array beats a
/// dictionary, and a lookup costs one bounds check.
final class ConnectionTable {
    private var slots: [Connection?]
    private(set) var count = 0

    init(capacity: Int) {
        slots = [Connection?](repeating: nil, count: max(capacity, 64))
    }

    subscript(fd: Int32) -> Connection? {
        let index = Int(fd)
        return index >= 0 && index < slots.count ? slots[index] : nil
    }

    func insert(_ connection: Connection) {
        let index = Int(connection.fd)
        if index >= slots.count {
            slots.append(contentsOf: [Connection?](repeating: nil, count: index + 1 - slots.count + 1024))
        }
        precondition(slots[index] == nil, "fd \(index) registered twice")
        slots[index] = connection
        count += 1
    }

    func remove(_ connection: Connection) {
        let index = Int(connection.fd)
        precondition(slots[index] === connection, "fd \(index) is not this connection")
        slots[index] = nil
        count -= 1
    }

    /// Every live connection; a copy, so callers may close connections while iterating.
    var all: [Connection] {
        slots.compactMap { $0 }
    }
}
