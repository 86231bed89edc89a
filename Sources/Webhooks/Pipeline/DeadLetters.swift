import Foundation
import Support

/// Webhooks that failed for good, one JSON line each with their last error, in
/// `<data dir>/webhooks-dead-letter.jsonl`; `bridge webhooks replay` sends them again.
///
/// The file is bounded by `maxBytes`: a letter that would take it past the bound is refused
/// (`DeadLetterError.full`), the newest one rather than the oldest, because dropping old letters
/// would destroy webhooks nobody has replayed yet (and cost a rewrite of the file per letter);
/// the caller keeps a refused webhook in the outbox instead, so nothing is lost.
public struct DeadLetters: Sendable {
    public let path: String
    public let maxBytes: Int

    public init(path: String, maxBytes: Int = .max) {
        self.path = path
        self.maxBytes = maxBytes
    }

    public struct Letter: Sendable, Equatable {
        public var id: String
        public var appID: String
        public var url: String
        public var createdAtMs: Int64
        public var failedAtMs: Int64
        public var attempts: Int
        public var error: String
        /// The JSON array of the webhook's events, as it was sent.
        public var eventsJSON: String

        public init(id: String, appID: String, url: String, createdAtMs: Int64, failedAtMs: Int64, attempts: Int,
                    error: String, eventsJSON: String) {
            self.id = id
            self.appID = appID
            self.url = url
            self.createdAtMs = createdAtMs
            self.failedAtMs = failedAtMs
            self.attempts = attempts
            self.error = error
            self.eventsJSON = eventsJSON
        }

        var line: String {
            JSONWriter.object {
                $0.field("id", id)
                $0.field("app", appID)
                $0.field("url", url)
                $0.field("created_ms", createdAtMs)
                $0.field("failed_ms", failedAtMs)
                $0.field("attempts", attempts)
                $0.field("error", error)
                $0.rawField("events", eventsJSON)
            }.text
        }
    }

    /// Appends one line (and flushes it to disk: a dead letter is the last copy of the webhook).
    public func append(_ letter: Letter) throws {
        try write(lines: [letter.line], append: true)
    }

    /// Every letter in the file; unreadable lines are reported in `skipped`.
    public func read() throws -> (letters: [Letter], skipped: Int) {
        guard FileManager.default.fileExists(atPath: path) else { return ([], 0) }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var letters: [Letter] = []
        var skipped = 0
        for line in text.split(separator: "\n") where !line.isEmpty {
            guard let letter = Self.parse(String(line)) else {
                skipped += 1
                continue
            }
            letters.append(letter)
        }
        return (letters, skipped)
    }

    /// Replaces the file's content with `letters` (write to a temporary file, then rename).
    public func replace(with letters: [Letter]) throws {
        try write(lines: letters.map(\.line), append: false)
    }

    private func write(lines: [String], append: Bool) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let text = lines.map { $0 + "\n" }.joined()
        let target = append ? path : path + ".tmp"
        let fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0o600)
        guard fd >= 0 else { throw DeadLetterError(operation: "open", path: target) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var size = stat()
        guard fstat(fd, &size) == 0 else { throw DeadLetterError(operation: "fstat", path: target) }
        let created = size.st_size == 0
        if append && Int(size.st_size) > maxBytes - bytes.count {
            throw DeadLetterError(operation: "append", path: target, code: EFBIG,
                                  detail: "the file would pass its bound of \(maxBytes) bytes")
        }
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw DeadLetterError(operation: "write", path: target) }
            written += n
        }
        guard fsync(fd) == 0 else { throw DeadLetterError(operation: "fsync", path: target) }
        if !append {
            guard rename(target, path) == 0 else { throw DeadLetterError(operation: "rename", path: path) }
        }
        // A new name (a rename, or a file created by this append) is durable once its directory is.
        if !append || created {
            try Self.syncDirectory(directory.isEmpty ? "." : directory)
        }
    }

    private static func syncDirectory(_ directory: String) throws {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw DeadLetterError(operation: "open", path: directory) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw DeadLetterError(operation: "fsync", path: directory) }
    }

    private static func parse(_ line: String) -> Letter? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let id = object["id"] as? String, let app = object["app"] as? String, let url = object["url"] as? String,
              let created = (object["created_ms"] as? NSNumber)?.int64Value,
              object["events"] is [Any],
              // `events` is written last: its text is kept exactly, not re-serialised.
              let marker = line.range(of: #","events":"#, options: .backwards), line.hasSuffix("}") else {
            return nil
        }
        let events = String(line[marker.upperBound..<line.index(before: line.endIndex)])
        return Letter(id: id, appID: app, url: url, createdAtMs: created,
                      failedAtMs: (object["failed_ms"] as? NSNumber)?.int64Value ?? 0,
                      attempts: (object["attempts"] as? NSNumber)?.intValue ?? 0,
                      error: object["error"] as? String ?? "", eventsJSON: events)
    }
}

public struct DeadLetterError: Error, CustomStringConvertible {
    public let operation: String
    public let path: String
    public let code: Int32
    public let detail: String?

    init(operation: String, path: String, code: Int32 = errno, detail: String? = nil) {
        self.operation = operation
        self.path = path
        self.code = code
        self.detail = detail
    }

    /// The file is at its bound (`DeadLetters.maxBytes`).
    public var isFull: Bool { operation == "append" && code == EFBIG }

    public var description: String { "\(operation) \(path): \(detail ?? String(cString: strerror(code)))" }
}
