/// The grace period of PROTOCOL.md §1.16: `channel_vacated` and `member_removed` wait `delayMs`,
/// and the matching `channel_occupied` / `member_added` arriving within it cancels both, so a page
/// reload sends nothing instead of a vacated/occupied flap.
struct GraceWindow {
    let delayMs: Int64
    private var held: [String: (app: String, event: WebhookEvent, dueMs: Int64)] = [:]

    init(delayMs: Int64) {
        self.delayMs = delayMs
    }

    /// The event to pass on now, or nil when it is held (a departure) or cancelled a held one.
    mutating func offer(_ event: WebhookEvent, app: String, nowMs: Int64) -> WebhookEvent? {
        guard delayMs > 0 else { return event }
        let key = app + "\u{0}" + event.pairKey
        if event.isDeparture {
            held[key] = (app, event, nowMs + delayMs)
            return nil
        }
        if event.isArrival, let departure = held[key], departure.event.kind == event.kind.opposite {
            held[key] = nil
            return nil
        }
        return event
    }

    /// Departures whose delay has passed, oldest first; they are no longer held.
    mutating func takeDue(nowMs: Int64) -> [(app: String, event: WebhookEvent)] {
        let due = held.filter { $0.value.dueMs <= nowMs }.sorted { $0.value.dueMs < $1.value.dueMs }
        for (key, _) in due { held[key] = nil }
        return due.map { ($0.value.app, $0.value.event) }
    }

    var nextDueMs: Int64? { held.values.map(\.dueMs).min() }
    var count: Int { held.count }
}

extension WebhookEvent.Kind {
    /// The arrival a departure pairs with, and the other way round.
    var opposite: WebhookEvent.Kind? {
        switch self {
        case .channelOccupied: .channelVacated
        case .channelVacated: .channelOccupied
        case .memberAdded: .memberRemoved
        case .memberRemoved: .memberAdded
        default: nil
        }
    }
}
