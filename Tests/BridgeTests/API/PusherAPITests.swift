@testable import Bridge
import Glibc
import Support
import Synchronization
import Testing

/// The HTTP API's request path (authentication, validation, publishing, answers) without a server:
/// `PusherAPI.reply(to:)` on signed requests, against one app with the local state authority.
@Suite struct PusherAPITests {
    private let api: PusherAPI

    init() {
        var config = AppConfig(id: "1", key: "key-1", secret: "secret-1")
        config.maxEventBatchSize = 2
        config.maxEventPayloadKB = 1
        api = PusherAPI(apps: AppRegistry(apps: [config], group: LoopGroup(maxConnections: 10), loopCount: 1, outlets: HubOutlets()))
    }

    /// A request signed the way the server libraries sign it (PROTOCOL.md §1.15), now.
    private static func signed(_ method: String, _ path: String, body: String = "", secret: String = "secret-1",
                               query: [(name: String, value: String)] = []) -> (request: HTTPRequest, signature: String, signed: String) {
        var query = query + [(name: "auth_key", value: "key-1"), (name: "auth_timestamp", value: String(time(nil))),
                             (name: "auth_version", value: "1.0")]
        if !body.isEmpty { query.append((name: "body_md5", value: Digest.hex(Digest.md5(Array(body.utf8))))) }
        let text = APISignature.stringToSign(method: method, path: path, query: query)
        let signature = Digest.hex(Digest.hmacSHA256(key: Array(secret.utf8), message: Array(text.utf8)))
        query.append((name: "auth_signature", value: signature))
        return (HTTPRequest(method: method, target: path, path: path, query: query, body: Array(body.utf8)), signature, text)
    }

    private func immediate(_ reply: PusherAPI.Reply) -> (status: Int, body: String)? {
        guard case .now(let response) = reply else { return nil }
        return (response.status, String(decoding: response.body, as: UTF8.self))
    }

    /// What the authority answers; the local one answers before `ask` returns.
    private func fromAuthority(_ reply: PusherAPI.Reply) -> (status: Int, body: String)? {
        guard case .fromAuthority(let ask) = reply else { return nil }
        let answer = Mutex<HTTPResponse?>(nil)
        ask { response in answer.withLock { $0 = response } }
        return answer.withLock { $0 }.map { ($0.status, String(decoding: $0.body, as: UTF8.self)) }
    }

    @Test func publishAnswersAtOnce() throws {
        let call = Self.signed("POST", "/apps/1/events", body: #"{"name":"e","channel":"c","data":"x"}"#)
        let answer = try #require(immediate(api.reply(to: call.request, ["app_id": "1"], api.events)))
        #expect(answer.status == 200 && answer.body == "{}")
    }

    @Test func batchPublishAnswersAtOnce() throws {
        let call = Self.signed("POST", "/apps/1/batch_events", body: #"{"batch":[{"name":"e","channel":"a","data":"x"},{"name":"e","channel":"b","data":"y"}]}"#)
        let answer = try #require(immediate(api.reply(to: call.request, ["app_id": "1"], api.batchEvents)))
        #expect(answer.status == 200 && answer.body == "{}")
    }

    @Test func badSignatureIs401WithTheStringToSign() throws {
        let body = #"{"name":"e","channel":"c","data":"x"}"#
        let call = Self.signed("POST", "/apps/1/events", body: body, secret: "wrong")
        let answer = try #require(immediate(api.reply(to: call.request, ["app_id": "1"], api.events)))
        let shown = call.signed.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: #"\\n"#)
        #expect(answer.status == 401)
        #expect(answer.body == #"{"error":"Invalid signature: you should have sent HmacSHA256Hex(\""# + shown
                + #"\", your_secret_key), but you sent \"\#(call.signature)\""}"#)
    }

    @Test func oversizedBatchIs400() throws {
        let item = #"{"name":"e","channel":"c","data":"x"}"#
        let call = Self.signed("POST", "/apps/1/batch_events", body: #"{"batch":[\#(item),\#(item),\#(item)]}"#)
        let answer = try #require(immediate(api.reply(to: call.request, ["app_id": "1"], api.batchEvents)))
        #expect(answer.status == 400 && answer.body == #"{"error":"Batch too large: 3 events, the limit is 2"}"#)
    }

    @Test func oversizedDataIs413() throws {
        let data = String(repeating: "x", count: 2000)
        let call = Self.signed("POST", "/apps/1/batch_events", body: #"{"batch":[{"name":"e","channel":"c","data":"\#(data)"}]}"#)
        let answer = try #require(immediate(api.reply(to: call.request, ["app_id": "1"], api.batchEvents)))
        #expect(answer.status == 413 && answer.body == #"{"error":"batch[0]: Event data is 2000 bytes, over the limit of 1024"}"#)
    }

    @Test func unknownAppIs404() throws {
        let call = Self.signed("GET", "/apps/9/channels")
        let answer = try #require(immediate(api.reply(to: call.request, ["app_id": "9"], api.channels)))
        #expect(answer.status == 404 && answer.body == #"{"error":"Unknown app 9"}"#)
    }

    @Test func countsAskedWithAPublishComeFromTheAuthority() throws {
        let call = Self.signed("POST", "/apps/1/events",
                               body: #"{"name":"e","channels":["presence-p","c"],"data":"x","info":"user_count,subscription_count"}"#)
        let answer = try #require(fromAuthority(api.reply(to: call.request, ["app_id": "1"], api.events)))
        #expect(answer.status == 200)
        #expect(answer.body == #"{"channels":{"presence-p":{"user_count":0,"subscription_count":0},"c":{"subscription_count":0}}}"#)
    }

    @Test func channelQuestionsComeFromTheAuthority() throws {
        let channel = Self.signed("GET", "/apps/1/channels/presence-p", query: [(name: "info", value: "user_count")])
        let one = try #require(fromAuthority(api.reply(to: channel.request, ["app_id": "1", "channel_name": "presence-p"], api.channel)))
        #expect(one.status == 200 && one.body == #"{"occupied":false,"user_count":0}"#)
        let users = Self.signed("GET", "/apps/1/channels/presence-p/users")
        let members = try #require(fromAuthority(api.reply(to: users.request, ["app_id": "1", "channel_name": "presence-p"], api.users)))
        #expect(members.status == 200 && members.body == #"{"users":[]}"#)
        let all = Self.signed("GET", "/apps/1/channels")
        let list = try #require(fromAuthority(api.reply(to: all.request, ["app_id": "1"], api.channels)))
        #expect(list.status == 200 && list.body == #"{"channels":{}}"#)
    }

    /// A refusal is known before any question is asked.
    @Test func refusedQuestionsAnswerAtOnce() throws {
        let call = Self.signed("GET", "/apps/1/channels/c", query: [(name: "info", value: "user_count")])
        let answer = try #require(immediate(api.reply(to: call.request, ["app_id": "1", "channel_name": "c"], api.channel)))
        #expect(answer.status == 400 && answer.body == #"{"error":"user_count is only available for presence channels"}"#)
    }
}
