@testable import Bridge
import Support
import Testing

/// Vectors from Pusher's auth-signatures document, recomputed independently (PROTOCOL.md §1.7).
@Suite struct ChannelAuthTests {
    let auth = ChannelAuth(appKey: "278d425bdf160c739803", secret: "7ad3773142a6692b25b8")

    @Test func privateChannelSignatureMatchesTheDocumentedVector() {
        #expect(auth.signature(of: "1234.1234:private-foobar") == "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4")
        let token = "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        #expect(auth.verify(auth: token, socketID: "1234.1234", channel: "private-foobar") == .valid)
    }

    @Test func presenceSignatureCoversTheExactChannelData() {
        let data = #"{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#
        let token = "278d425bdf160c739803:31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80"
        #expect(auth.verify(auth: token, socketID: "1234.1234", channel: "presence-foobar", channelData: data) == .valid)
        // The same data re-serialised with a space no longer matches.
        let respaced = #"{"user_id": 10,"user_info":{"name":"Mr. Channels"}}"#
        #expect(auth.verify(auth: token, socketID: "1234.1234", channel: "presence-foobar", channelData: respaced) != .valid)
    }

    @Test func signinStringUsesTheUserForm() {
        #expect(auth.signature(of: #"1234.1234::user::{"id":"12345"}"#) == "4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba")
    }

    @Test func rejectionsNameTheStringToSign() {
        let good = "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        let expected = ChannelAuth.Verdict.invalid(expectedStringToSign: "1234.1234:private-foobar")
        for token in ["other-key:" + good, "278d425bdf160c739803:" + good.uppercased(), "278d425bdf160c739803:" + good.dropLast(),
                      good, "", "278d425bdf160c739803:"] {
            #expect(auth.verify(auth: token, socketID: "1234.1234", channel: "private-foobar") == expected)
        }
        #expect(auth.verify(auth: "278d425bdf160c739803:" + good, socketID: "1234.1235", channel: "private-foobar")
                == .invalid(expectedStringToSign: "1234.1235:private-foobar"))
    }

    @Test func digestsMatchKnownAnswers() {
        // RFC 4231 test case 2, and MD5("") from RFC 1321.
        #expect(Digest.hex(Digest.hmacSHA256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(Digest.hex(Digest.md5([])) == "d41d8cd98f00b204e9800998ecf8427e")
        #expect(Digest.hex(Digest.md5(Array("abc".utf8))) == "900150983cd24fb0d6963f7d28e17f72")
        #expect(Digest.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!Digest.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!Digest.constantTimeEquals([1, 2], [1, 2, 3]))
    }
}
