@testable import Bridge
import Support
import Testing

/// Every family of JSON Bridge writes, against the exact bytes it wrote before the writer
/// (JSONWriter) replaced the hand-built text: clients compare frames byte for byte.
@Suite struct WireJSONBytesTests {
    private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
    /// The payload of a server frame (unmasked; a 2- or 4-byte header below 64 KiB).
    private func text(_ frame: OutboundBuffer) -> String {
        let bytes = Array(frame.bytes)
        return String(decoding: bytes.dropFirst(bytes[1] == 126 ? 4 : 2), as: UTF8.self)
    }

    @Test func pusherEnvelopeWithEveryKey() {
        let bytes = PusherEvent.encode(event: "client-\"x\"", channel: "presence-é\u{2028}", data: "a\\b\u{1}\t", userID: "u\n1")
        #expect(text(bytes) == #"{"event":"client-\"x\"","channel":"presence-é"# + "\u{2028}" + #"","data":"a\\b\u0001\t","user_id":"u\n1"}"#)
        let raw = Array(#""already \"encoded\"""#.utf8)
        #expect(text(PusherEvent.encode(event: "e", data: .json(raw[...]))) == #"{"event":"e","data":"already \"encoded\""}"#)
        #expect(text(PusherEvent.encode(event: "pusher:pong", data: nil as String?)) == #"{"event":"pusher:pong"}"#)
    }

    @Test func pusherErrorFrames() {
        #expect(text(PusherError.overCapacity("Too \"many\"\n").frameBytes)
                == #"{"event":"pusher:error","data":{"code":4100,"message":"Too \"many\"\n"}}"#)
        #expect(text(PusherError.malformed("").frameBytes) == #"{"event":"pusher:error","data":{"code":null,"message":""}}"#)
    }

    @Test func presenceData() {
        let json = ChannelState.presenceJSON([(id: "b\"", info: #"{"n":1}"#), (id: "a", info: "null")])
        #expect(json == #"{"presence":{"ids":["a","b\""],"hash":{"a":null,"b\"":{"n":1}},"count":2}}"#)
        #expect(ChannelState.presenceJSON([]) == #"{"presence":{"ids":[],"hash":{},"count":0}}"#)
    }

    @Test func memberAndWatchlistEvents() {
        #expect(text(Hub.memberAddedFrame("presence-c", "7\"", #"{"name":"A"}"#))
                == #"{"event":"pusher_internal:member_added","channel":"presence-c","data":"{\"user_id\":\"7\\\"\",\"user_info\":{\"name\":\"A\"}}"}"#)
        #expect(text(Hub.memberRemovedFrame("presence-c", "7"))
                == #"{"event":"pusher_internal:member_removed","channel":"presence-c","data":"{\"user_id\":\"7\"}"}"#)
        #expect(Hub.watchlistEvents(online: ["1", "2\""], offline: []) == #"{"events":[{"name":"online","user_ids":["1","2\""]}]}"#)
        #expect(Hub.watchlistEvents(online: ["1"], offline: ["3"])
                == #"{"events":[{"name":"online","user_ids":["1"]},{"name":"offline","user_ids":["3"]}]}"#)
        #expect(Hub.watchlistEvents(online: [], offline: []) == #"{"events":[]}"#)
    }

    @Test func errorBodies() {
        #expect(text(HTTPResponse.error(404, "Unknown app \"x\"").body) == #"{"error":"Unknown app \"x\""}"#)
    }

    @Test func parsedValuesSerializeAsTheyWere() throws {
        let value = try JSONParser.parse(#"{"a":[1,-2.5e3,true,false,null,"q\"\u0001é"],"":{},"b":[]}"#)
        #expect(value.serialized == #"{"a":[1,-2.5e3,true,false,null,"q\"\u0001é"],"":{},"b":[]}"#)
    }

    @Test func jwtPayload() throws {
        let token = JWT.sign(JWT.Claims(organization: "acme\"", epoch: "e1", generation: 3, issuedAt: 100, expiresAt: -5), key: [1, 2])
        let parts = token.split(separator: ".")
        #expect(text(try #require(Base64.decodeURL(String(parts[0])))) == #"{"alg":"HS256","typ":"JWT"}"#)
        #expect(text(try #require(Base64.decodeURL(String(parts[1]))))
                == #"{"iss":"bridge","org":"acme\"","epoch":"e1","gen":3,"iat":100,"exp":-5}"#)
    }

    @Test func debugLogEntries() {
        let entry = DebugLog.Entry(seq: 9, timeMs: 1_700_000_000_123, kind: .apiMessage, channel: "c\"", event: nil,
                                   data: "{\"x\":1}", detail: nil)
        var json = JSONWriter()
        entry.write(to: &json)
        #expect(json.text == #"{"seq":9,"time_ms":1700000000123,"type":"\#(DebugLog.Kind.apiMessage.rawValue)","channel":"c\"","data":"{\"x\":1}"}"#)
    }
}
