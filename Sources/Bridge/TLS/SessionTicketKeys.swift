import COpenSSL
import Synchronization
import System

/// The keys that encrypt TLS session tickets, for the whole process (every certificate, every
/// loop): a ticket is sealed with the current key and opened with the current or the previous
/// one, and the current key is replaced every `lifetime`, so a stolen key reveals at most two
/// lifetimes of sessions. Random at start: a restart only costs clients one full handshake.
enum SessionTicketKeys {
    private struct Key {
        let name: [UInt8]  // 16 bytes, sent in the clear with the ticket
        let cipherKey: [UInt8]  // AES-256-CBC
        let macKey: [UInt8]  // HMAC-SHA256
        let createdAt: Double

        init(now: Double) {
            name = SecureRandom.bytes(16)
            cipherKey = SecureRandom.bytes(32)
            macKey = SecureRandom.bytes(32)
            createdAt = now
        }
    }

    private struct Ring {
        var current: Key
        var previous: Key?
        var lifetime: Double
    }

    private static let ring = Mutex(Ring(current: Key(now: MonotonicClock.seconds), previous: nil, lifetime: 12 * 3600))

    /// Sets how long a key seals new tickets (from the TLS settings).
    static func setLifetime(_ seconds: Double) {
        ring.withLock { $0.lifetime = max(1, seconds) }
    }

    /// Replaces the current key now (the previous one still opens tickets).
    static func rotate() {
        ring.withLock { ring in
            ring.previous = ring.current
            ring.current = Key(now: MonotonicClock.seconds)
        }
    }

    /// The key that seals a new ticket (rotating first when it is due), or the one named by a
    /// ticket being opened; `renew` when that one is no longer current.
    private static func key(named name: [UInt8]?) -> (key: Key, renew: Bool)? {
        let now = MonotonicClock.seconds
        return ring.withLock { ring in
            if now - ring.current.createdAt >= ring.lifetime {
                ring.previous = ring.current
                ring.current = Key(now: now)
            }
            guard let name else { return (ring.current, false) }
            if ring.current.name == name { return (ring.current, false) }
            if let previous = ring.previous, previous.name == name { return (previous, true) }
            return nil
        }
    }

    /// OpenSSL's ticket key callback: `encrypt` 1 seals (fill name and IV, set up the cipher and
    /// MAC; return 1), 0 opens (0: unknown key, full handshake; 1: ok; 2: ok, issue a new ticket).
    static let callback: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<UInt8>?,
                                         OpaquePointer?, OpaquePointer?, Int32) -> Int32 = { _, name, iv, cipher, mac, encrypt in
        guard let name, let iv, let cipher, let mac else { return -1 }
        let sealing = encrypt == 1
        guard let (key, renew) = key(named: sealing ? nil : Array(UnsafeBufferPointer(start: name, count: 16))) else { return 0 }
        if sealing {
            for i in 0..<16 { name[i] = key.name[i] }
            guard RAND_bytes(iv, 16) == 1 else { return -1 }
        }
        let cipherOK = key.cipherKey.withUnsafeBufferPointer { cipherKey in
            sealing ? EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nil, cipherKey.baseAddress, iv)
                    : EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nil, cipherKey.baseAddress, iv)
        }
        guard cipherOK == 1, setMACKey(mac, key.macKey) else { return -1 }
        return renew ? 2 : 1
    }

    private static func setMACKey(_ mac: OpaquePointer, _ key: [UInt8]) -> Bool {
        var key = key
        var digest = Array("SHA256".utf8CString)
        return "key".withCString { keyName in
            "digest".withCString { digestName in
                key.withUnsafeMutableBytes { keyBytes in
                    digest.withUnsafeMutableBufferPointer { digestText in
                        var parameters = [
                            OSSL_PARAM_construct_octet_string(keyName, keyBytes.baseAddress, keyBytes.count),
                            OSSL_PARAM_construct_utf8_string(digestName, digestText.baseAddress, 0),
                            OSSL_PARAM_construct_end(),
                        ]
                        return EVP_MAC_CTX_set_params(mac, &parameters) == 1
                    }
                }
            }
        }
    }
}
