import Glibc

extension PusherSession {
    /// What a seed-mode connection (one opened with the organization's `jwt`) carries: the JWT's
    /// claims stay with it, because the JWT can stop holding while the socket is open.
    struct SeedMode {
        /// The client's `user_id` (PusherLite's `uniqueUserId`): its presence identity.
        let userID: String?
        let claims: JWT.Claims
        let authority: SeedAuthority

        /// Nil while the JWT holds; else the 4009 that ends the session: the JWT expired, or its
        /// organization rotated its secret token or is gone.
        func revocation() -> PusherError? {
            guard case .failure(let refusal) = authority.current(claims, now: time(nil)) else { return nil }
            return PusherError.unauthorized(refusal.message)
        }
    }

    /// Closes a seed session whose JWT no longer holds. Every act of such a session checks this
    /// first (`handle`); the broker also calls it when the organizations change, so that a
    /// revoked token does not even keep receiving.
    func endIfSeedRevoked() {
        if let revoked = seed?.revocation() { fail(revoked) }
    }
}
