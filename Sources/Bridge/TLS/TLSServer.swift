import COpenSSL
import Glibc
import Synchronization

/// The certificates the TLS listener serves, replaceable while it runs: a reload loads every file
/// anew and swaps the whole set only if all of it loaded, so a broken new certificate leaves the
/// old ones in use. New handshakes use the set current when they start; open connections keep theirs.
public final class TLSServer: Sendable {
    private let current: Mutex<TLSCertificateSet?> = Mutex(nil)
    /// The files' stamps when a reload from them last failed: not tried again until they change.
    private let failedStamps = Mutex<[FileStamp]?>(nil)

    public init(_ settings: TLSSettings) throws(OpenSSLError) {
        let loaded = try TLSCertificateSet(settings, server: self)
        current.withLock { $0 = loaded }
    }

    /// Loads `settings`' files; on success they serve every handshake from now on.
    public func reload(_ settings: TLSSettings) throws(OpenSSLError) {
        do {
            let loaded = try TLSCertificateSet(settings, server: self)
            current.withLock { $0 = loaded }
            failedStamps.withLock { $0 = nil }
        } catch {
            failedStamps.withLock { $0 = FileStamp.of(settings.allFiles) }
            throw error
        }
    }

    /// Reloads when a certificate or key file changed on disk since it was loaded (a renewal),
    /// unless a reload of exactly these files failed already. True when it reloaded.
    public func reloadIfFilesChanged() throws(OpenSSLError) -> Bool {
        guard let loaded = current.withLock({ $0 }) else { return false }
        let stamps = FileStamp.of(loaded.settings.allFiles)
        guard stamps != loaded.stamps, stamps != failedStamps.withLock({ $0 }) else { return false }
        try reload(loaded.settings)
        return true
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
    let settings: TLSSettings
    /// The files as they were just before loading: a later change means a renewal to load.
    let stamps: [FileStamp]
    let defaultContext: TLSContext
    private let byName: [String: TLSContext]
    /// `*.example.com` entries, by `example.com`.
    private let byWildcardParent: [String: TLSContext]

    init(_ settings: TLSSettings, server: TLSServer) throws(OpenSSLError) {
        self.settings = settings
        stamps = FileStamp.of(settings.allFiles)
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

/// What tells a changed file apart: its inode (a renewal that replaces the file), size and mtime.
struct FileStamp: Equatable, Sendable {
    let inode: UInt64
    let size: Int64
    let modified: Int64

    /// One stamp per path; a missing file gets a zero stamp (its return is a change too).
    static func of(_ paths: [String]) -> [FileStamp] {
        paths.map { path in
            var info = stat()
            guard stat(path, &info) == 0 else { return FileStamp(inode: 0, size: 0, modified: 0) }
            return FileStamp(inode: UInt64(info.st_ino), size: Int64(info.st_size),
                             modified: Int64(info.st_mtim.tv_sec) &* 1_000_000_000 &+ Int64(info.st_mtim.tv_nsec))
        }
    }
}
