import COpenSSL
import Synchronization

/// Pusher socket ids: two decimal integers joined by a dot (`\d+\.\d+`, the form the official
/// libraries check). The first half is 32 random bits from the CSPRNG, so ids cannot be guessed;
/// the second half carries a process-wide counter above 20 more random bits, so no two ids this
/// process hands out are ever equal.
public enum SocketID {
    private static let counter = Atomic<UInt64>(0)

    public static func next() -> String {
        var random = [UInt8](repeating: 0, count: 8)
        if RAND_bytes(&random, Int32(random.count)) != 1 {
            preconditionFailure("the OpenSSL CSPRNG failed")
        }
        let word = random.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let first = word >> 32
        let sequence = counter.add(1, ordering: .relaxed).newValue
        let second = sequence << 20 | (word & 0xF_FFFF)
        return "\(first).\(second)"
    }
}
