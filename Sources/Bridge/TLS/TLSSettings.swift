/// The TLS listener's settings: where it binds, the default certificate, and the certificates
/// chosen by the name a client asks for (SNI).
public struct TLSSettings: Sendable, Equatable {
    /// Bind address; nil binds where the plain listener does (`--host`).
    public var host: String?
    /// 0 = ephemeral.
    public var port: Int
    /// Served to clients that name no host or a host no other certificate covers.
    public var defaultCertificate: TLSCertificateFiles
    public var certificates: [TLSCertificateFiles]
    /// How often new session tickets get a new key; tickets of the previous key still resume.
    public var ticketKeyLifetimeSeconds: Double = 12 * 3600

    /// Every certificate and key file, for the watch that notices renewals.
    var allFiles: [String] {
        ([defaultCertificate] + certificates).flatMap { [$0.certificatePath, $0.keyPath] }
    }

    public init(host: String? = nil, port: Int, defaultCertificate: TLSCertificateFiles, certificates: [TLSCertificateFiles] = []) {
        self.host = host
        self.port = port
        self.defaultCertificate = defaultCertificate
        self.certificates = certificates
    }
}

/// A certificate chain and its key, as PEM files, and the host names it serves (`*.example.com`
/// covers one label).
public struct TLSCertificateFiles: Sendable, Equatable {
    public var hostnames: [String]
    public var certificatePath: String
    public var keyPath: String

    public init(hostnames: [String] = [], certificatePath: String, keyPath: String) {
        self.hostnames = hostnames
        self.certificatePath = certificatePath
        self.keyPath = keyPath
    }
}
