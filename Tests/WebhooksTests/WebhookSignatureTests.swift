import Testing
import Webhooks

@Suite struct WebhookSignatureTests {
    // RFC 4231 §4.3, test case 2.
    @Test func rfc4231TestCase2() {
        let signature = WebhookSignature.sign(body: Array("what do ya want for nothing?".utf8), secret: "Jefe")
        #expect(signature == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    // RFC 4231 §4.2, test case 1: twenty 0x0b bytes, ASCII, so a String holds the key exactly.
    @Test func rfc4231TestCase1() {
        let key = String(repeating: "\u{0b}", count: 20)
        let signature = WebhookSignature.sign(body: Array("Hi There".utf8), secret: key)
        #expect(signature == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    }

    @Test func emptySecretAndEmptyBody() {
        #expect(WebhookSignature.sign(body: [], secret: "")
            == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
    }

    // The body is the example in Pusher's webhooks.md; the digest comes from Python's hmac module.
    @Test func pusherStyleBody() {
        let body = Array(#"{"time_ms":1327078148132,"events":[{"name":"channel_occupied","channel":"my-channel"}]}"#.utf8)
        let signature = WebhookSignature.sign(body: body, secret: "app-secret")
        #expect(signature == "e9ea3bd210dd97133a5b221229cbee6d5cf2f42f34877c7d3ae84be2353449ba")
        #expect(signature.utf8.count == 64)
        #expect(signature.allSatisfy { "0123456789abcdef".contains($0) })
    }

    @Test func signatureCoversEveryByte() {
        let body = Array(#"{"time_ms":1,"events":[]}"#.utf8)
        var changed = body
        changed[changed.count - 2] = UInt8(ascii: "}")
        #expect(WebhookSignature.sign(body: body, secret: "s") != WebhookSignature.sign(body: changed, secret: "s"))
        #expect(WebhookSignature.sign(body: body, secret: "s") != WebhookSignature.sign(body: body, secret: "t"))
    }

    @Test func isValidAcceptsOwnSignature() {
        let body = Array(#"{"time_ms":1327078148132,"events":[]}"#.utf8)
        let signature = WebhookSignature.sign(body: body, secret: "app-secret")
        #expect(WebhookSignature.isValid(body: body, secret: "app-secret", signature: signature))
    }

    @Test func isValidRejectsWrongSecretBodyOrSignature() {
        let body = Array(#"{"time_ms":1327078148132,"events":[]}"#.utf8)
        let signature = WebhookSignature.sign(body: body, secret: "app-secret")
        #expect(!WebhookSignature.isValid(body: body, secret: "other-secret", signature: signature))
        #expect(!WebhookSignature.isValid(body: body + [0x20], secret: "app-secret", signature: signature))
        let flipped = String(signature.dropLast()) + (signature.last == "0" ? "1" : "0")
        #expect(!WebhookSignature.isValid(body: body, secret: "app-secret", signature: flipped))
    }

    @Test func isValidRejectsTruncatedEmptyLongerAndUppercase() {
        let body = Array("payload".utf8)
        let signature = WebhookSignature.sign(body: body, secret: "app-secret")
        #expect(!WebhookSignature.isValid(body: body, secret: "app-secret", signature: String(signature.dropLast())))
        #expect(!WebhookSignature.isValid(body: body, secret: "app-secret", signature: String(signature.prefix(32))))
        #expect(!WebhookSignature.isValid(body: body, secret: "app-secret", signature: ""))
        #expect(!WebhookSignature.isValid(body: body, secret: "app-secret", signature: signature + "0"))
        #expect(!WebhookSignature.isValid(body: body, secret: "app-secret", signature: signature.uppercased()))
    }
}
