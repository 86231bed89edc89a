import Foundation
import Support
import System

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

    private func write(lines: [String], append: Bool) throws(DeadLetterError) {
        let bytes = Array(lines.map { $0 + "\n" }.joined().utf8)
        let appended: Bool
        do throws(SystemError) {
            let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? ""
            if !directory.isEmpty { try DurableFile.makeDirectory(directory) }
            guard append else { return try DurableFile.write(path, bytes) }
            appended = try appendDurably(bytes)
        } catch {
            throw .system(error)
        }
        if !appended { throw .full(path: path, maxBytes: maxBytes) }
    }

    /// Appends and fsyncs; false, writing nothing, when the file would pass `maxBytes`.
    private func appendDurably(_ bytes: [UInt8]) throws(SystemError) -> Bool {
        let fd = try Syscall.retrying("open", path: path) { open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw SystemError("fstat", path: path) }
        guard Int(status.st_size) <= maxBytes - bytes.count else { return false }
        try DurableFile.writeAll(fd, bytes, path: path)
        guard fsync(fd) == 0 else { throw SystemError("fsync", path: path) }
        // A file this append created is durable once its directory is.
        if status.st_size == 0 { try DurableFile.syncDirectory(of: path) }
        return true
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

public enum DeadLetterError: Error, CustomStringConvertible {
    /// Appending would take the file past its bound (`DeadLetters.maxBytes`).
    case full(path: String, maxBytes: Int)
    case system(SystemError)

    public var isFull: Bool {
        if case .full = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .full(let path, let maxBytes): "append \(path): the file would pass its bound of \(maxBytes) bytes"
        case .system(let error): error.description
        }
    }
}
