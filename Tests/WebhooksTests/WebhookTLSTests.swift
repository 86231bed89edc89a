import CCurl
import Foundation
import Testing
@testable import Webhooks

/// A target's `tls_ca_file` / `tls_verify`, how a TLS failure is classified, and how retried failures are logged.
@Suite struct WebhookTLSTests {
    /// A CA certificate (its key was thrown away): only its PEM form matters here.
    static let caCertificate = """
    -----BEGIN CERTIFICATE-----
    MIIBlzCCAT2gAwIBAgIUd3WE0itIVddSjr00E69YdoQdCt4wCgYIKoZIzj0EAwIw
    GTEXMBUGA1UEAwwOQnJpZGdlIFRlc3QgQ0EwHhcNMjYxMjA2MDUyNjI3WhcNMjYx
    MjA4MDUyNjI3WjAZMRcwFQYDVQQDDA5CcmlkZ2UgVGVzdCBDQTBZMBMGByqGSM49
    AgEGCCqGSM49AwEHA0IABLsZsoaYnEQ3nLKnVr2usa7WT7I14CgtAdfwhWHDzuG7
    fb367pL4sxKjlKEvwmLId43G/so/FWhwL0l0cbPB3POjYzBhMB0GA1UdDgQWBBRp
    LL16V9a6TS9uw/jvzegS/QnInDAfBgNVHSMEGDAWgBRpLL16V9a6TS9uw/jvzegS
    /QnInDAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAKBggqhkjOPQQD
    AgNIADBFAiEAsIOY3cIZM8zabTOJUmhVBmGLfdafQxrhgRGrAt47hQECIEViYmeI
    JVjiY/g0pLkZbdZjRqJBMEVjpqYpvwpGnt20
    -----END CERTIFICATE-----

    """

    let url = "https://hooks.example/pusher"

    /// A fresh directory for this test's files.
    func directory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("webhook-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    func refusal(caFile: String? = nil, verify: Bool? = nil, url: String? = nil) -> String? {
        do {
            _ = try WebhookTLS.configured(url: url ?? self.url, caFile: caFile, verify: verify)
            return nil
        } catch {
            return error.reason
        }
    }

    @Test func withoutTheKeysTheSystemStoreVerifiesEverything() throws {
        #expect(try WebhookTLS.configured(url: url, caFile: nil, verify: nil) == .systemTrust)
        #expect(try WebhookTLS.configured(url: "http://plain.example", caFile: nil, verify: nil) == .systemTrust)
        #expect(try WebhookTLS.configured(url: url, caFile: nil, verify: true) == .systemTrust)
        #expect(WebhookTarget(url: url).tls == .systemTrust)
    }

    @Test func verifyFalseTurnsVerificationOffOnlyWhenSaid() throws {
        #expect(try WebhookTLS.configured(url: url, caFile: nil, verify: false) == .unverified)
        #expect(try WebhookTLS.configured(url: "HTTPS://Hooks.example", caFile: nil, verify: false) == .unverified)
    }

    @Test func aReadableCAFileIsTrustedAsWell() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("ca.pem").path
        // A bundle may hold other blocks and text around its certificates.
        try ("# test CA\n" + Self.caCertificate + "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")
            .write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try WebhookTLS.configured(url: url, caFile: file, verify: nil) == .extraCA(file: file))
        #expect(try WebhookTLS.configured(url: url, caFile: file, verify: true) == .extraCA(file: file))
    }

    @Test func aCAFileThatCannotBeUsedIsRefused() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("missing.pem").path
        #expect(refusal(caFile: missing) == "tls_ca_file \(missing) cannot be read: No such file or directory")
        #expect(refusal(caFile: dir.path) == "tls_ca_file \(dir.path) cannot be read: Is a directory")
        let junk = dir.appendingPathComponent("junk.pem").path
        try "not a certificate\n".write(toFile: junk, atomically: true, encoding: .utf8)
        #expect(refusal(caFile: junk) == "tls_ca_file \(junk) holds no PEM certificate")
        let key = dir.appendingPathComponent("key.pem").path
        try "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".write(toFile: key, atomically: true, encoding: .utf8)
        #expect(refusal(caFile: key) == "tls_ca_file \(key) holds no PEM certificate")
        #expect(refusal(caFile: "") == "tls_ca_file  is empty: name a PEM file of CA certificates")
    }

    @Test func theKeysAreRefusedOnAPlainURLAndTogether() throws {
        #expect(refusal(verify: false, url: "http://plain.example/hook")
                == "tls_verify only applies to an https:// url, not http://plain.example/hook")
        #expect(refusal(verify: true, url: "http://plain.example/hook")
                == "tls_verify only applies to an https:// url, not http://plain.example/hook")
        #expect(refusal(caFile: "/nonexistent/ca.pem", verify: false, url: "http://plain.example/hook")
                == "tls_ca_file and tls_verify only apply to an https:// url, not http://plain.example/hook")
        #expect(refusal(caFile: "/nonexistent/ca.pem", verify: false)
                == "tls_ca_file and \"tls_verify\": false contradict each other; use one of them")
    }

    // MARK: Failures

    @Test func aRefusedCertificateIsARetryableTLSFailure() {
        let unknownCA = CurlError(CURLE_PEER_FAILED_VERIFICATION,
                                  detail: "SSL certificate problem: unable to get local issuer certificate")
        #expect(unknownCA.isTLSFailure && unknownCA.isRetryable)
        #expect(unknownCA.description == "curl error 60 (TLS): SSL peer certificate or SSH remote key was not OK "
                + "(SSL certificate problem: unable to get local issuer certificate)")
        for code in [CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR] {
            #expect(CurlError(code).isTLSFailure && CurlError(code).isRetryable, "\(code)")
        }
        let refused = CurlError(CURLE_COULDNT_CONNECT)
        #expect(!refused.isTLSFailure && refused.isRetryable && !refused.description.contains("TLS"))
        #expect(!CurlError(CURLE_UNSUPPORTED_PROTOCOL).isRetryable)
    }

    @Test func retriedFailuresAreLoggedOncePerTargetPerInterval() {
        var log = RetryLog(intervalMs: 10_000)
        #expect(log.line(target: "https://a", error: "curl error 60", attempts: 1, nowMs: 0)
                == "webhooks: attempt 1 to https://a failed, retrying: curl error 60")
        #expect(log.line(target: "https://a", error: "curl error 60", attempts: 2, nowMs: 100) == nil)
        #expect(log.line(target: "https://b", error: "HTTP 503", attempts: 1, nowMs: 200) != nil)
        #expect(log.line(target: "https://a", error: "curl error 60", attempts: 1, nowMs: 9_999) == nil)
        #expect(log.line(target: "https://a", error: "curl error 7", attempts: 3, nowMs: 10_000)
                == "webhooks: attempt 3 to https://a failed, retrying: curl error 7; 2 more failed attempts since the last line")
        #expect(log.line(target: "https://a", error: "curl error 7", attempts: 4, nowMs: 20_000)
                == "webhooks: attempt 4 to https://a failed, retrying: curl error 7")
    }
}
