/// What every loop reads and none changes: the configuration, the routes and the CORS policy.
final class ServerContext: Sendable {
    let config: ServerConfig
    let router: Router<Endpoint>
    let cors: CORSPolicy
    /// The TLS listener's certificates; nil without one.
    let tls: TLSServer?

    init(config: ServerConfig, router: Router<Endpoint>, tls: TLSServer? = nil) {
        self.config = config
        self.router = router
        self.tls = tls
        self.cors = CORSPolicy(allowedOrigins: config.corsOrigins)
    }
}
