import Support
import Testing
@testable import Webhooks

/// Webhook bodies, dead letters and the status document, against the exact bytes written before
/// JSONWriter: receivers check a signature over the body's bytes.
@Suite struct WebhookJSONTests {
    @Test func eventsWithEveryOptionalKey() {
        let event = WebhookEvent(kind: .clientEvent, channel: "private-\"c\"", userID: "u\n", event: "client-x",
                                 data: #"{"a":"é\u2028"}"#, socketID: "1.2", subscriptionCount: -3)
        #expect(event.json == #"{"name":"client_event","channel":"private-\"c\"","event":"client-x","data":"{\"a\":\"é\\u2028\"}","socket_id":"1.2","user_id":"u\n","subscription_count":-3}"#)
        #expect(WebhookEvent(kind: .channelOccupied, channel: "c").json == #"{"name":"channel_occupied","channel":"c"}"#)
    }

    @Test func deliveryBody() {
        let delivery = WebhookDelivery(id: "1", target: "t", url: "http://x", appKey: "k", secret: "s",
                                       eventsJSON: Array(#"[{"name":"channel_vacated","channel":"c"}]"#.utf8),
                                       createdAtMs: 5, stampTimeAtDelivery: false, extraHeaders: [])
        #expect(String(decoding: delivery.body(nowMs: 9), as: UTF8.self)
                == #"{"time_ms":5,"events":[{"name":"channel_vacated","channel":"c"}]}"#)
    }

    @Test func deadLetterLine() {
        let letter = DeadLetters.Letter(id: "w\"1", appID: "a", url: "http://x/\\", createdAtMs: 1, failedAtMs: Int64.max,
                                        attempts: 4, error: "HTTP 500\n", eventsJSON: "[]")
        #expect(letter.line == #"{"id":"w\"1","app":"a","url":"http://x/\\","created_ms":1,"failed_ms":9223372036854775807,"attempts":4,"error":"HTTP 500\n","events":[]}"#)
    }

    @Test func backlogAccounts() {
        var backlogs = AppBacklogs(shareBytes: 1000, logIntervalMs: 1000)
        backlogs.add(app: "a", cost: 10)
        backlogs.recordRefusal(app: "a")
        #expect(json(backlogs, "a") == #"{"backlog_bytes":10,"dropped":0,"refused":1}"#)
        #expect(json(backlogs, "never") == #"{"backlog_bytes":0,"dropped":0,"refused":0}"#)
    }
}

/// What `AppBacklogs` writes for one app.
func json(_ backlogs: AppBacklogs, _ app: String) -> String {
    var json = JSONWriter()
    backlogs.write(of: app, to: &json)
    return json.text
}
