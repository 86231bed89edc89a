import COpenSSL
import Synchronization

/// The certificates the TLS listener serves, replaceable while it runs: a reload loads every file
/// anew and swaps the whole set only if all of it loaded, so a broken new certificate leaves the
/// old ones in use. New handshakes use the set current when they start; open connections keep theirs.
public final class TLSServer: Sendable {
    private let current: Mutex<TLSCertificateSet?> = Mutex(nil)

    public init(_ settings: TLSSettings) throws(OpenSSLError) {
        let loaded = try TLSCertificateSet(settings, server: self)
        current.withLock { $0 = loaded }
    }

    /// Loads `settings`' files; on success they serve every handshake from now on.
    public func reload(_ settings: TLSSettings) throws(OpenSSLError) {
        let loaded = try TLSCertificateSet(settings, server: self)
        current.withLock { $0 = loaded }
    }

    /// A server-side TLS session for an accepted socket, starting with the default certificate
    /// (SNI may switch it during the handshake).
    func stream(fd: Int32) -> TLSStream? {
        guard let context = current.withLock({ $0?.defaultContext }) else { return nil }
        return TLSStream(context: context, fd: fd)
    }

    func context(forServerName name: String) -> TLSContext? {
        current.withLock { $0?.context(for: name) }
    }

    /// SNI: switches the handshake to the certificate that covers the name the client asked for.
    /// A name no certificate covers gets the default one (the client then decides).
    static let serverNameCallback: @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int32>?, UnsafeMutableRawPointer?) -> Int32 = {
        ssl, _, argument in
        guard let ssl, let argument, let name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) else { return SSL_TLSEXT_ERR_OK }
        let server = Unmanaged<TLSServer>.fromOpaque(argument).takeUnretainedValue()
        if let context = server.context(forServerName: String(cString: name)) {
            _ = SSL_set_SSL_CTX(ssl, context.pointer)
        }
        return SSL_TLSEXT_ERR_OK
    }
}

/// One generation of loaded certificates: the default, and the others by host name.
struct TLSCertificateSet: Sendable {
    let defaultContext: TLSContext
    private let byName: [String: TLSContext]
    /// `*.example.com` entries, by `example.com`.
    private let byWildcardParent: [String: TLSContext]

    init(_ settings: TLSSettings, server: TLSServer) throws(OpenSSLError) {
        defaultContext = try TLSContext.load(settings.defaultCertificate, server: server)
        var byName: [String: TLSContext] = [:]
        var byWildcardParent: [String: TLSContext] = [:]
        for files in settings.certificates {
            let context = try TLSContext.load(files, server: server)
            for hostname in files.hostnames.map({ $0.lowercased() }) {
                if hostname.hasPrefix("*.") {
                    byWildcardParent[String(hostname.dropFirst(2))] = context
                } else {
                    byName[hostname] = context
                }
            }
        }
        self.byName = byName
        self.byWildcardParent = byWildcardParent
    }

    func context(for serverName: String) -> TLSContext? {
        let name = serverName.lowercased()
        if let exact = byName[name] { return exact }
        guard let dot = name.firstIndex(of: ".") else { return nil }
        return byWildcardParent[String(name[name.index(after: dot)...])]
    }
}
