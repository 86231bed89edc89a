/// A webhook as the outbox keeps it: enough to deliver it again after a restart. Key, secret and
/// headers are not stored: they come from the configuration at delivery time, so a rotated secret
/// signs the retries. Encoded as length-prefixed fields: `[app][url][created ms][events JSON]`.
struct StoredWebhook: Equatable {
    let appID: String
    let url: String
    let createdAtMs: Int64
    let eventsJSON: [UInt8]

    var encoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(appID.utf8.count + url.utf8.count + eventsJSON.count + 20)
        Self.appendField(Array(appID.utf8), to: &out)
        Self.appendField(Array(url.utf8), to: &out)
        withUnsafeBytes(of: UInt64(bitPattern: createdAtMs).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: eventsJSON)
        return out
    }

    init(appID: String, url: String, createdAtMs: Int64, eventsJSON: [UInt8]) {
        self.appID = appID
        self.url = url
        self.createdAtMs = createdAtMs
        self.eventsJSON = eventsJSON
    }

    /// Nil for bytes that are not a stored webhook (the outbox checksums make that unlikely).
    init?(decoding bytes: [UInt8]) {
        var offset = 0
        guard let app = Self.readField(bytes, &offset), let url = Self.readField(bytes, &offset),
              offset + 8 <= bytes.count else { return nil }
        var created: UInt64 = 0
        for index in 0..<8 { created |= UInt64(bytes[offset + index]) << (8 * UInt64(index)) }
        appID = String(decoding: app, as: UTF8.self)
        self.url = String(decoding: url, as: UTF8.self)
        createdAtMs = Int64(bitPattern: created)
        eventsJSON = Array(bytes[(offset + 8)...])
    }

    private static func appendField(_ field: [UInt8], to out: inout [UInt8]) {
        withUnsafeBytes(of: UInt32(field.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: field)
    }

    private static func readField(_ bytes: [UInt8], _ offset: inout Int) -> [UInt8]? {
        guard offset + 4 <= bytes.count else { return nil }
        var length = 0
        for index in 0..<4 { length |= Int(bytes[offset + index]) << (8 * index) }
        offset += 4
        guard length <= bytes.count - offset else { return nil }
        defer { offset += length }
        return Array(bytes[offset..<(offset + length)])
    }
}
