/// What every loop reads and none changes: the configuration, the routes and the CORS policy.
final class ServerContext: Sendable {
    let config: ServerConfig
    let router: Router<Endpoint>
    let cors: CORSPolicy

    init(config: ServerConfig, router: Router<Endpoint>) {
        self.config = config
        self.router = router
        self.cors = CORSPolicy(allowedOrigins: config.corsOrigins)
    }
}
