import Glibc
import Synchronization

/// One line per event on stderr: `<time> <LEVEL> [conn N] message`. The level is set once at start;
/// per-message logging exists only at `debug`.
public enum Log {
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
        var line = timestamp() + " " + level.label + " "
        if let conn { line += "[conn \(conn)] " }
        line += message() + "\n"
        // One write(2) per line keeps lines from different loops whole.
        var bytes = Array(line.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
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
