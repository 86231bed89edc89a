import Foundation
import Support
import Testing
@testable import Bridge

struct JWTTests {
    let key = Array("a-server-key-of-some-length-000000".utf8)
    let claims = JWT.Claims(organization: "acme-inc", epoch: "5f2c9a0e1b7d4c3a", generation: 3, issuedAt: 1_000, expiresAt: 2_000)

    @Test func signedTokensVerifyBeforeTheirExpiry() throws {
        let token = JWT.sign(claims, key: key)
        #expect(token.split(separator: ".").count == 3)
        #expect(try JWT.verify(token, key: key, now: 1_999).get() == claims)
        #expect(JWT.verify(token, key: key, now: 2_000) == .failure(.expired))
    }

    @Test func theHeaderIsTheStandardHS256One() throws {
        let header = try #require(Base64.decodeURL(String(JWT.sign(claims, key: key).split(separator: ".")[0])))
        #expect(String(decoding: header, as: UTF8.self) == #"{"alg":"HS256","typ":"JWT"}"#)
    }

    /// RFC 7515 §A.1's HS256 example verifies the signature step: its payload lacks our claims,
    /// so the signature check passes and the claims check refuses it.
    @Test func theRFC7515ExampleSignatureVerifies() {
        let rfcKey = Base64.decodeURL("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")!
        let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
            + ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
            + ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        #expect(JWT.verify(token, key: rfcKey, now: 0) == .failure(.malformed("the claims need iss, org, epoch, gen, iat and exp")))
        let flippedSignature = token.replacingOccurrences(of: ".dBjf", with: ".eBjf")
        #expect(JWT.verify(flippedSignature, key: rfcKey, now: 0) == .failure(.signature))
        // "k" → "l" changes only the last character's unused padding bits: not canonical, refused.
        let paddingBits = String(token.dropLast()) + "l"
        #expect(JWT.verify(paddingBits, key: rfcKey, now: 0) == .failure(.malformed("the signature is not base64url")))
    }

    @Test func anotherKeyIsRefused() {
        let token = JWT.sign(claims, key: Array("another-key".utf8))
        #expect(JWT.verify(token, key: key, now: 1_500) == .failure(.signature))
    }

    @Test func algNoneAndOtherAlgorithmsAreRefusedBeforeTheSignature() {
        let payload = String(JWT.sign(claims, key: key).split(separator: ".")[1])
        for alg in ["none", "HS512", "RS256", "hs256"] {
            let header = Base64.encodeURL(Array(#"{"alg":"\#(alg)","typ":"JWT"}"#.utf8))
            #expect(JWT.verify(header + "." + payload + ".", key: key, now: 1_500) == .failure(.algorithm(alg)))
        }
    }

    @Test func aTamperedPayloadIsRefused() {
        let parts = JWT.sign(claims, key: key).split(separator: ".").map(String.init)
        let forged = Base64.encodeURL(Array(#"{"iss":"bridge","org":"globex","gen":3,"iat":1000,"exp":2000}"#.utf8))
        #expect(JWT.verify(parts[0] + "." + forged + "." + parts[2], key: key, now: 1_500) == .failure(.signature))
    }

    /// Tokens of the format before epochs named only the slug and the generation, both of which a
    /// later organization of the same slug may have again: they are refused, correctly signed or not.
    @Test func aTokenWithoutAnEpochIsRefused() {
        for claims in [#"{"iss":"bridge","org":"acme-inc","gen":3,"iat":1000,"exp":2000}"#,
                       #"{"iss":"bridge","org":"acme-inc","epoch":"","gen":3,"iat":1000,"exp":2000}"#,
                       #"{"iss":"bridge","org":"acme-inc","epoch":7,"gen":3,"iat":1000,"exp":2000}"#] {
            let signingInput = Base64.encodeURL(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8)) + "." + Base64.encodeURL(Array(claims.utf8))
            let token = signingInput + "." + Base64.encodeURL(Digest.hmacSHA256(key: key, message: Array(signingInput.utf8)))
            #expect(JWT.verify(token, key: key, now: 1_500) == .failure(.malformed("the claims need iss, org, epoch, gen, iat and exp")))
        }
    }

    @Test(arguments: ["", "a.b", "a.b.c.d", "!!!.e30.x", "e30.e30.x+y"])
    func malformedTokensAreRefused(token: String) {
        guard case .failure = JWT.verify(token, key: key, now: 0) else {
            Issue.record("accepted \(token)")
            return
        }
    }

    @Test func base64URLRoundTripsAndRefusesTheStandardAlphabet() {
        for count in 0..<20 {
            let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 * 37 + 250) }
            let text = Base64.encodeURL(bytes)
            #expect(!text.contains("=") && !text.contains("+") && !text.contains("/"))
            #expect(Base64.decodeURL(text) == bytes)
        }
        #expect(Base64.decodeURL("-_8") == [0xFB, 0xFF])
        #expect(Base64.decodeURL("+/8") == nil)
        #expect(Base64.decodeURL("AA==") == nil)
        #expect(Base64.decodeURL("A") == nil)
    }
}
