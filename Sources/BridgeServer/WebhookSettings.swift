import Bridge
import Synchronization
import Webhooks

/// The webhook side of the configuration: each app's `webhooks` list read into targets, and the
/// hand-over of channel events from the broker to the webhook pipeline.
enum WebhookSettings {
    /// Reads `apps[i].webhooks` (soketi's shape plus `batching`, `time_ms`, `tls_ca_file` and
    /// `tls_verify`); errors name the field.
    static func targets(of app: AppConfig, index: Int) throws(CLIError) -> [WebhookTarget] {
        try app.webhooks.enumerated().map { position, entry throws(CLIError) in
            let path = "apps[\(index)].webhooks[\(position)]"
            guard let object = entry.objectValue else { throw CLIError(message: "\(path) must be an object") }
            guard let url = object["url"]?.stringValue else { throw CLIError(message: "\(path).url is required") }
            var target = WebhookTarget(url: url)
            var caFile: String?
            var verify: Bool?
            for member in object.members {
                let field = "\(path).\(member.key)"
                switch member.key {
                case "url":
                    break
                case "event_types":
                    guard let names = member.value.arrayValue else { throw CLIError(message: "\(field) must be an array of event names") }
                    target.eventTypes = try Set(names.map { name throws(CLIError) in
                        guard let text = name.stringValue, let kind = WebhookEvent.Kind(rawValue: text) else {
                            throw CLIError(message: "\(field): unknown event type \(name.serialized); use "
                                           + WebhookEvent.Kind.allCases.map(\.rawValue).joined(separator: ", "))
                        }
                        return kind
                    })
                case "filter":
                    guard let filter = member.value.objectValue else { throw CLIError(message: "\(field) must be an object") }
                    for rule in filter.members {
                        guard let text = rule.value.stringValue else { throw CLIError(message: "\(field).\(rule.key) must be a string") }
                        switch rule.key {
                        case "channel_name_starts_with": target.channelPrefix = text
                        case "channel_name_ends_with": target.channelSuffix = text
                        default: throw CLIError(message: "\(field): unknown key \"\(rule.key)\"")
                        }
                    }
                case "headers":
                    guard let headers = member.value.objectValue else { throw CLIError(message: "\(field) must be an object of strings") }
                    for header in headers.members {
                        guard let value = header.value.stringValue, Self.isToken(header.key), !value.contains(where: \.isNewline) else {
                            throw CLIError(message: "\(field).\(header.key) must be a valid header name with a one-line string value")
                        }
                        target.headers[header.key] = value
                    }
                case "batching":
                    target.batching = try batching(member.value, field: field)
                case "time_ms":
                    switch member.value.stringValue {
                    case "created": target.stampTimeAtDelivery = false
                    case "delivery": target.stampTimeAtDelivery = true
                    default: throw CLIError(message: "\(field) must be \"created\" or \"delivery\"")
                    }
                case "tls_ca_file":
                    guard let file = member.value.stringValue, !file.isEmpty else {
                        throw CLIError(message: "\(field) must be the path of a PEM file of CA certificates")
                    }
                    caFile = file
                case "tls_verify":
                    guard let flag = member.value.boolValue else { throw CLIError(message: "\(field) must be true or false") }
                    verify = flag
                default:
                    throw CLIError(message: "\(path): unknown key \"\(member.key)\"")
                }
            }
            do throws(WebhookTLS.Refusal) {
                target.tls = try WebhookTLS.configured(url: url, caFile: caFile, verify: verify)
            } catch {
                throw CLIError(message: "\(path): \(error.reason)")
            }
            return target
        }
    }

    private static func batching(_ value: JSON, field: String) throws(CLIError) -> WebhookTarget.Batching? {
        if let enabled = value.boolValue { return enabled ? WebhookTarget.Batching() : nil }
        guard let object = value.objectValue else { throw CLIError(message: "\(field) must be true, false or {window_ms, max_events}") }
        var batching = WebhookTarget.Batching()
        for member in object.members {
            guard let number = member.value.intValue, number >= 1 else {
                throw CLIError(message: "\(field).\(member.key) must be a positive integer")
            }
            switch member.key {
            case "window_ms": batching.windowMs = min(number, 60_000)
            case "max_events": batching.maxEvents = min(number, 10_000)
            default: throw CLIError(message: "\(field): unknown key \"\(member.key)\"")
            }
        }
        return batching
    }

    private static func isToken(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && !"()<>@,;:\\\"/[]?={}".utf8.contains($0) }
    }

    /// Why one app's webhook targets cannot be used; nil when they can.
    @Sendable static func problem(in app: AppConfig) -> String? {
        do { _ = try targets(of: app, index: 0) } catch { return error.message.replacingOccurrences(of: "apps[0].", with: "") }
        return nil
    }

    static func apps(_ configs: [AppConfig]) throws(CLIError) -> [WebhookApp] {
        try configs.enumerated().map { index, app throws(CLIError) in
            WebhookApp(id: app.id, key: app.key, secret: app.secret, targets: try targets(of: app, index: index))
        }
    }
}

/// Passes each webhook's delivery outcome to the debug console of its app. Made before the broker
/// (whose observer needs the pipeline), attached to it once it exists.
final class WebhookOutcomeRelay: Sendable {
    private let broker = Mutex<Broker?>(nil)

    func attach(_ broker: Broker) {
        self.broker.withLock { $0 = broker }
    }

    func report(appID: String, url: String, eventsJSON: [UInt8], outcome: DeliveryOutcome) {
        guard let broker = broker.withLock({ $0 }) else { return }
        switch outcome {
        case .delivered(let status, let attempts):
            broker.recordWebhook(appID: appID, eventsJSON: eventsJSON, delivered: true,
                                 detail: "\(url): HTTP \(status) after \(attempts) attempt\(attempts == 1 ? "" : "s")")
        case .failed(let error, let attempts):
            broker.recordWebhook(appID: appID, eventsJSON: eventsJSON, delivered: false,
                                 detail: "\(url): \(error) after \(attempts) attempt\(attempts == 1 ? "" : "s"); dead-lettered")
        }
    }
}

/// Passes the broker's channel events to the webhook pipeline.
struct WebhookForwarder: ChannelEventObserver {
    let pipeline: WebhookPipeline

    func app(_ appID: String, emitted event: ChannelEvent) -> Bool {
        guard pipeline.wantsEvents(app: appID) else { return true }
        return pipeline.emit(app: appID, Self.webhookEvent(event))
    }

    static func webhookEvent(_ event: ChannelEvent) -> WebhookEvent {
        switch event {
        case .channelOccupied(let channel): WebhookEvent(kind: .channelOccupied, channel: channel)
        case .channelVacated(let channel): WebhookEvent(kind: .channelVacated, channel: channel)
        case .memberAdded(let channel, let userID): WebhookEvent(kind: .memberAdded, channel: channel, userID: userID)
        case .memberRemoved(let channel, let userID): WebhookEvent(kind: .memberRemoved, channel: channel, userID: userID)
        case .clientEvent(let channel, let name, let data, let socketID, let userID):
            // The webhook's `data` is a string: a string the client sent as is, anything else as its JSON text.
            WebhookEvent(kind: .clientEvent, channel: channel, userID: userID, event: name,
                         data: (try? JSONParser.parse(data))?.stringValue ?? data, socketID: socketID)
        case .cacheMiss(let channel): WebhookEvent(kind: .cacheMiss, channel: channel)
        case .subscriptionCount(let channel, let count):
            WebhookEvent(kind: .subscriptionCount, channel: channel, subscriptionCount: count)
        }
    }
}

extension WebhookSettings {
    static func pipelineOptions(_ settings: ServeSettings, outcomes: WebhookOutcomeRelay? = nil) -> WebhookPipeline.Options {
        let knobs = settings.webhooks
        var options = WebhookPipeline.Options(dataDirectory: settings.server.dataDir)
        options.graceMs = Int(knobs.graceSeconds * 1000)
        options.outbox.maxBytes = knobs.outboxMaxBytes
        options.outbox.sync = knobs.fsyncIntervalMs.map { .interval(milliseconds: $0) } ?? .always
        options.clientEventLimitBytes = knobs.outboxMaxBytes / 5 * 4
        // At most 2^40 × 100: no overflow (both are range-checked by their flags).
        options.appShareBytes = knobs.outboxMaxBytes * knobs.appSharePercent / 100
        options.deadLetterMaxBytes = knobs.deadLetterMaxBytes
        options.dispatcher = dispatcherOptions(knobs)
        if let outcomes {
            options.onOutcome = { app, url, events, outcome in outcomes.report(appID: app, url: url, eventsJSON: events, outcome: outcome) }
        }
        return options
    }

    static func dispatcherOptions(_ knobs: WebhookOptions) -> DispatcherOptions {
        var options = DispatcherOptions()
        options.requestTimeoutMs = Int(knobs.timeoutSeconds * 1000)
        options.connectTimeoutMs = min(options.connectTimeoutMs, options.requestTimeoutMs)
        options.maxAgeMs = Int64(knobs.maxAgeSeconds * 1000)
        options.initialRetryDelayMs = Int(knobs.retryDelaySeconds * 1000)
        options.maxRetryDelayMs = max(options.initialRetryDelayMs, Int(knobs.retryMaxDelaySeconds * 1000))
        return options
    }
}
