/// Pending retries ordered by due time (`MonotonicClock.milliseconds`): a binary min-heap.
/// Equal due times come out in scheduling order.
struct RetrySchedule<Element> {
    private struct Entry {
        let dueMs: Int64
        let sequence: UInt64
        let element: Element

        func isBefore(_ other: Entry) -> Bool {
            dueMs != other.dueMs ? dueMs < other.dueMs : sequence < other.sequence
        }
    }

    private var heap: [Entry] = []
    private var nextSequence: UInt64 = 0

    var count: Int { heap.count }
    var nextDueMs: Int64? { heap.first?.dueMs }

    mutating func insert(_ element: Element, dueMs: Int64) {
        heap.append(Entry(dueMs: dueMs, sequence: nextSequence, element: element))
        nextSequence += 1
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].isBefore(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the earliest element if it is due at `nowMs`.
    mutating func popDue(nowMs: Int64) -> Element? {
        guard let first = heap.first, first.dueMs <= nowMs else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < heap.count && heap[left].isBefore(heap[smallest]) { smallest = left }
                if right < heap.count && heap[right].isBefore(heap[smallest]) { smallest = right }
                guard smallest != parent else { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return first.element
    }
}
