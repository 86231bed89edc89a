import Bridge
import Testing

@Suite struct PusherEventTests {
    @Test func connectionEstablishedIsDoubleEncoded() {
        let bytes = PusherEvent.encode(event: "pusher:connection_established",
                                       data: #"{"socket_id":"123.456","activity_timeout":120}"#)
        #expect(String(decoding: bytes, as: UTF8.self)
                == #"{"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":120}"}"#)
    }

    @Test func keyOrderAndEscaping() {
        let bytes = PusherEvent.encode(event: "client-typing", channel: "presence-room", data: "line\nbreak \"q\"", userID: "7")
        #expect(String(decoding: bytes, as: UTF8.self)
                == #"{"event":"client-typing","channel":"presence-room","data":"line\nbreak \"q\"","user_id":"7"}"#)
    }

    @Test func frameWrapsTheEnvelopeOnce() {
        let frame = PusherEvent.frame(event: "e", channel: "c", data: "d")
        let payload = Array(#"{"event":"e","channel":"c","data":"d"}"#.utf8)
        #expect(Array(frame.bytes) == [0x81, UInt8(payload.count)] + payload)
    }

    @Test func socketIDsMatchTheLibraryPatternAndNeverRepeat() {
        var seen = Set<String>()
        for _ in 0..<10_000 {
            let id = SocketID.next()
            let parts = id.split(separator: ".", omittingEmptySubsequences: false)
            #expect(parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) })
            seen.insert(id)
        }
        #expect(seen.count == 10_000)
    }
}

@Suite struct PusherEnvelopeTests {
    @Test func clientDataPassesThroughByteForByte() {
        let raw = Array(#"{"a": [1, 2.50], "é":"\u2028"}"#.utf8)
        let bytes = PusherEvent.encode(event: "client-x", channel: "private-c", data: .json(raw[...]), userID: nil)
        #expect(String(decoding: bytes, as: UTF8.self) == #"{"event":"client-x","channel":"private-c","data":{"a": [1, 2.50], "é":"\u2028"}}"#)
    }

    @Test func errorDataIsAnObject() {
        let error = PusherError(.unauthorized, "Invalid \"sig\"")
        #expect(String(decoding: error.frameBytes, as: UTF8.self) == #"{"event":"pusher:error","data":{"code":4009,"message":"Invalid \"sig\""}}"#)
        #expect(error.closeCode.rawValue == 4009)
        #expect(String(decoding: PusherError(nil, "bad").frameBytes, as: UTF8.self) == #"{"event":"pusher:error","data":{"code":null,"message":"bad"}}"#)
    }
}
