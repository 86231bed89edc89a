import Glibc
import Support
import Synchronization

/// One line per event on stderr: `<time> <LEVEL> [conn N] message`, or with `--log-format json` one
/// JSON object per line (`time`, `level`, `message`, `conn`) for log collectors. Level and format
/// are set once at start; per-message logging exists only at `debug`.
public enum Log {
    public enum Format: String, Sendable {
        case text, json
    }

    public enum Level: Int, Sendable, Comparable {
        case debug, info, warn, error

        public init?(name: String) {
            switch name.lowercased() {
            case "debug": self = .debug
            case "info": self = .info
            case "warn", "warning": self = .warn
            case "error": self = .error
            default: return nil
            }
        }

        var label: String {
            switch self {
            case .debug: "DEBUG"
            case .info: "INFO"
            case .warn: "WARN"
            case .error: "ERROR"
            }
        }

        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    }

    private static let threshold = Atomic<Int>(Level.info.rawValue)
    private static let writesJSON = Atomic<Bool>(false)

    public static var format: Format {
        get { writesJSON.load(ordering: .relaxed) ? .json : .text }
        set { writesJSON.store(newValue == .json, ordering: .relaxed) }
    }

    public static var level: Level {
        get { Level(rawValue: threshold.load(ordering: .relaxed)) ?? .info }
        set { threshold.store(newValue.rawValue, ordering: .relaxed) }
    }

    public static func enabled(_ level: Level) -> Bool {
        level.rawValue >= threshold.load(ordering: .relaxed)
    }

    public static func debug(_ message: @autoclosure () -> String, conn: UInt64? = nil) { write(.debug, message, conn) }
    public static func info(_ message: @autoclosure () -> String, conn: UInt64? = nil) { write(.info, message, conn) }
    public static func warn(_ message: @autoclosure () -> String, conn: UInt64? = nil) { write(.warn, message, conn) }
    public static func error(_ message: @autoclosure () -> String, conn: UInt64? = nil) { write(.error, message, conn) }

    private static func write(_ level: Level, _ message: () -> String, _ conn: UInt64?) {
        guard enabled(level) else { return }
        var bytes = Array(line(level, message(), conn: conn, time: timestamp(), format: format).utf8)
        // One write(2) per line keeps lines from different loops whole.
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }

    /// One log line, newline included. In JSON the message is escaped, so a client-supplied
    /// string in it cannot forge another line or field.
    static func line(_ level: Level, _ message: String, conn: UInt64?, time: String, format: Format) -> String {
        switch format {
        case .text:
            return time + " " + level.label + " " + (conn.map { "[conn \($0)] " } ?? "") + message + "\n"
        case .json:
            return JSONWriter.object {
                $0.field("time", time)
                $0.field("level", level.label.lowercased())
                $0.field("message", message)
                if let conn { $0.field("conn", conn) }
            }.text + "\n"
        }
    }

    private static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + pad(Int32(now.tv_nsec / 1_000_000), 3) + "Z"
    }
}
