import COpenSSL
import Glibc

/// How the certificate of a target's `https://` receiver is checked. Without a setting it is
/// libcurl's default: the system CA store, and both the peer's certificate and its host name verified.
public enum WebhookTLS: Sendable, Hashable {
    /// The system CA store; certificate and host name verified.
    case systemTrust
    /// `tls_ca_file`: the CA certificates in this PEM file are trusted as well (libcurl's CA
    /// directory still holds the system's); certificate and host name verified.
    case extraCA(file: String)
    /// `tls_verify: false`: neither the certificate nor the host name is checked.
    case unverified

    /// Why a target's TLS keys cannot be used: the text after the target's path in the error.
    public struct Refusal: Error, Equatable {
        public let reason: String
    }

    /// The setting a target's `tls_ca_file` and `tls_verify` ask for (nil: the key is absent).
    /// Refused: either key on a URL that is not `https://`, both together (a CA to trust and no
    /// checking at all contradict each other), and a CA file that cannot be read or holds no
    /// PEM certificate (else every delivery would fail until someone looked).
    public static func configured(url: String, caFile: String?, verify: Bool?) throws(Refusal) -> WebhookTLS {
        guard caFile != nil || verify != nil else { return .systemTrust }
        let keys = [caFile.map { _ in "tls_ca_file" }, verify.map { _ in "tls_verify" }].compactMap { $0 }
        guard url.lowercased().hasPrefix("https://") else {
            let verb = keys.count == 1 ? "applies" : "apply"
            throw Refusal(reason: "\(keys.joined(separator: " and ")) only \(verb) to an https:// url, not \(url)")
        }
        if caFile != nil && verify == false {
            throw Refusal(reason: "tls_ca_file and \"tls_verify\": false contradict each other; use one of them")
        }
        guard let caFile else { return verify == false ? .unverified : .systemTrust }
        if let problem = problem(withCAFile: caFile) {
            throw Refusal(reason: "tls_ca_file \(caFile) \(problem)")
        }
        return .extraCA(file: caFile)
    }

    /// Nil when the file holds at least one PEM certificate; else what is wrong with it.
    static func problem(withCAFile path: String) -> String? {
        guard !path.isEmpty else { return "is empty: name a PEM file of CA certificates" }
        guard let file = fopen(path, "r") else { return "cannot be read: \(String(cString: strerror(errno)))" }
        defer { fclose(file) }
        var count = 0
        while let certificate = PEM_read_X509(file, nil, nil, nil) {
            X509_free(certificate)
            count += 1
        }
        // The loop ends at the end of the file or at the first block that is not a certificate.
        let failure = ferror(file) != 0 ? errno : 0
        ERR_clear_error()
        if failure != 0 { return "cannot be read: \(String(cString: strerror(failure)))" }
        return count == 0 ? "holds no PEM certificate" : nil
    }
}
