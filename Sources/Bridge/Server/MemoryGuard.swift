import Foundation
import Synchronization

/// Sheds load before the kernel's OOM killer would end the process (soketi's "accept traffic"
/// threshold): while resident memory is above `limitBytes`, new connections and subscriptions are
/// refused with a clear error and `/ready` answers 503. A sampling thread reads the RSS four times
/// a second, so the checks on the hot paths are one atomic load.
public final class MemoryGuard: Sendable {
    /// Nil: no threshold.
    public let limitBytes: Int?
    private let over = Atomic<Bool>(false)
    private let residentBytes = Atomic<Int>(0)

    public init(limitBytes: Int?) {
        self.limitBytes = limitBytes
    }

    public var isOver: Bool { over.load(ordering: .relaxed) }

    /// Why `/ready` fails, while it does.
    public var problem: String? {
        guard isOver, let limitBytes else { return nil }
        return "resident memory \(residentBytes.load(ordering: .relaxed) >> 20) MiB is over the threshold of \(limitBytes >> 20) MiB"
    }

    func start() {
        guard limitBytes != nil else { return }
        sample()
        let thread = Thread { [self] in
            while true {
                usleep(250_000)
                sample()
            }
        }
        thread.name = "bridge-memory-guard"
        thread.start()
    }

    private func sample() {
        guard let limitBytes, let resident = Self.residentBytes() else { return }
        residentBytes.store(resident, ordering: .relaxed)
        let nowOver = resident > limitBytes
        guard over.exchange(nowOver, ordering: .relaxed) != nowOver else { return }
        if nowOver {
            Log.warn("resident memory \(resident >> 20) MiB is over --max-memory-mb \(limitBytes >> 20): refusing new connections and subscriptions")
        } else {
            Log.info("resident memory \(resident >> 20) MiB is back under --max-memory-mb \(limitBytes >> 20): accepting again")
        }
    }

    /// The second field of /proc/self/statm (resident pages) in bytes.
    static func residentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// 80 % of what the process may use: the machine's memory, or its cgroup's limit when lower.
    public static var defaultLimitBytes: Int {
        let physical = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        var available = physical > 0 ? physical : Int.max
        if let text = try? String(contentsOfFile: "/sys/fs/cgroup/memory.max", encoding: .utf8),
           let cgroup = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), cgroup > 0 {
            available = min(available, cgroup)
        }
        return available / 5 * 4
    }
}
