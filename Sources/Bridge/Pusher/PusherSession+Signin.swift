import Support

/// `pusher:signin` (PROTOCOL.md §1.9): the backend vouches for the user with a signature over the
/// socket id and `user_data`; the user's watchlist is told who of its users is online.
extension PusherSession {
    func signIn(_ data: JSONObject?) {
        guard let auth = data?["auth"]?.stringValue, let userData = data?["user_data"]?.stringValue else {
            return report(.unauthorized("pusher:signin needs auth and user_data"))
        }
        let config = app.config
        let expected = ChannelAuth.signinStringToSign(socketID: socketID, userData: userData)
        if case .invalid = ChannelAuth(appKey: config.key, secret: config.secret).verify(auth: auth, stringToSign: expected) {
            return report(.unauthorized(ChannelAuth.mismatchMessage(expected: expected, given: auth)))
        }
        guard let user = (try? JSONParser.parse(userData))?.objectValue,
              let id = user["id"]?.stringValue, !id.isEmpty, id.utf8.count <= SubscribeAuthorization.maxUserIDLength else {
            return report(.unauthorized("user_data must be a JSON object with a non-empty string id"))
        }
        if let current = userID {
            guard current == id else {
                return report(.unauthorized("This connection is already signed in as user \(current)"))
            }
            return send(event: "pusher:signin_success", data: Self.signinSuccessData(userData))
        }

        var watched = (user["watchlist"]?.arrayValue ?? []).compactMap { $0.stringValue ?? $0.numberText }
        let overflow = watched.count > Self.maxWatchlist
        if overflow { watched = Array(watched.prefix(Self.maxWatchlist)) }
        userID = id
        watchlist = watched
        hub.signIn(self, userID: id, watchlist: watched)
        send(event: "pusher:signin_success", data: Self.signinSuccessData(userData))
        if !watched.isEmpty { hub.tellWatchlist(to: self, watched) }
        if overflow {
            report(.watchlistLimit("Watchlist limit exceeded: only the first \(Self.maxWatchlist) user ids are watched"))
        }
    }

    /// `{"user_data":"<the signed user_data, as a string>"}`.
    private static func signinSuccessData(_ userData: String) -> String {
        JSONWriter.object { $0.field("user_data", userData) }.text
    }
}
