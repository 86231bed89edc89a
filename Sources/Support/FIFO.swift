/// A first-in first-out queue with O(1) amortised push and pop: an array read from a
/// moving head, compacted once the consumed part is most of it. Used by the webhook
/// delivery thread and the Redis connection thread.
public struct FIFO<Element> {
    @usableFromInline var slots: [Element?] = []
    @usableFromInline var head = 0

    public init() {}

    @inlinable public var isEmpty: Bool { head == slots.count }
    @inlinable public var count: Int { slots.count - head }

    @inlinable
    public mutating func append(_ element: Element) {
        slots.append(element)
    }

    @inlinable
    public mutating func popFirst() -> Element? {
        guard head < slots.count else { return nil }
        let element = slots[head]
        slots[head] = nil
        head += 1
        // Reclaim the consumed prefix once it is most of the array.
        if head == slots.count {
            slots.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 && head * 2 >= slots.count {
            slots.removeFirst(head)
            head = 0
        }
        return element
    }

    /// Empties the queue, returning what it held, oldest first.
    @inlinable
    public mutating func removeAll() -> [Element] {
        let remaining = slots[head...].compactMap { $0 }
        slots = []
        head = 0
        return remaining
    }
}
