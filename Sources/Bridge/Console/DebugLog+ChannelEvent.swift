extension DebugLog {
    /// A hub event as a console entry. Subscription counts are left out: the stats panel shows them.
    func record(_ event: ChannelEvent) {
        guard isRecording else { return }
        switch event {
        case .channelOccupied(let channel):
            record(.channelOccupied, channel: channel)
        case .channelVacated(let channel):
            record(.channelVacated, channel: channel)
        case .memberAdded(let channel, let userID):
            record(.memberAdded, channel: channel, detail: "user \(userID)")
        case .memberRemoved(let channel, let userID):
            record(.memberRemoved, channel: channel, detail: "user \(userID)")
        case .clientEvent(let channel, let name, let data, let socketID, let userID):
            record(.clientEvent, channel: channel, event: name, data: data, detail: Self.connection(socketID, userID: userID))
        case .cacheMiss(let channel):
            record(.cacheMiss, channel: channel)
        case .subscriptionCount:
            break
        }
    }

    /// Who did it: `socket 123.456`, with the presence user when there is one.
    static func connection(_ socketID: String, userID: String?) -> String {
        "socket \(socketID)" + (userID.map { " (user \($0))" } ?? "")
    }
}
