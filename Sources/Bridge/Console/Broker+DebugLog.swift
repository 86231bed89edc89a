extension Broker {
    /// Records a webhook that was delivered or given up on in its app's debug log. The executable
    /// calls it from the webhook dispatcher, which the core knows nothing about.
    public func recordWebhook(appID: String, eventsJSON: [UInt8], delivered: Bool, detail: String) {
        guard let log = apps.app(id: appID)?.debugLog, log.isRecording else { return }
        let events = (try? JSONParser.parse(eventsJSON))?.arrayValue?.compactMap(\.objectValue) ?? []
        // One channel or event name when all the batched events share it.
        let channels = Set(events.compactMap { $0["channel"]?.stringValue })
        let names = Set(events.compactMap { $0["name"]?.stringValue })
        log.record(delivered ? .webhookSent : .webhookFailed, channel: channels.count == 1 ? channels.first : nil,
                   event: names.count == 1 ? names.first : names.sorted().joined(separator: ","),
                   data: String(decoding: eventsJSON, as: UTF8.self), detail: detail)
    }
}
