@testable import Bridge
import Foundation
import Testing

@Suite struct LogTests {
    private let time = "2026-12-06T07:00:00.123Z"

    @Test func textLinesCarryTimeLevelConnectionAndMessage() {
        #expect(Log.line(.warn, "slow consumer", conn: 7, time: time, format: .text)
                == "2026-12-06T07:00:00.123Z WARN [conn 7] slow consumer\n")
        #expect(Log.line(.info, "listening", conn: nil, time: time, format: .text) == "2026-12-06T07:00:00.123Z INFO listening\n")
    }

    @Test func jsonLinesAreOneObjectAndEscapeWhatAClientSent() throws {
        // A message holding a quote and a newline (say, from a request) stays one line and one field.
        let line = Log.line(.debug, "rejecting \"GET /\"\n{\"level\":\"error\"}", conn: 42, time: time, format: .json)
        #expect(line.hasSuffix("\n"))
        #expect(line.dropLast().contains("\n") == false)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["time"] as? String == time)
        #expect(object["level"] as? String == "debug")
        #expect(object["message"] as? String == "rejecting \"GET /\"\n{\"level\":\"error\"}")
        #expect(object["conn"] as? Int == 42)
        let withoutConnection = Log.line(.error, "x", conn: nil, time: time, format: .json)
        #expect(withoutConnection == #"{"time":"2026-12-06T07:00:00.123Z","level":"error","message":"x"}"# + "\n")
    }
}
