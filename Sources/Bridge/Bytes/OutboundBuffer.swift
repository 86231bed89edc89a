import Glibc

/// Immutable bytes queued for writing, shared by reference: a frame published to ten thousand
/// subscribers is encoded once into one `OutboundBuffer` and every write queue holds the same object.
/// The memory is allocated once, never moves and is never written after `init`, which is what makes
/// it safe to share across loops and to hand its address straight to `writev`.
public final class OutboundBuffer: @unchecked Sendable {
    public let base: UnsafeRawPointer
    public let count: Int

    /// Allocates `count` bytes and lets `fill` write them exactly once.
    public init(count: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 8)
        fill(UnsafeMutableRawBufferPointer(start: memory, count: count))
        self.base = UnsafeRawPointer(memory)
        self.count = count
    }

    public convenience init(_ bytes: [UInt8]) {
        self.init(count: bytes.count) { target in
            bytes.withUnsafeBytes { target.copyMemory(from: $0) }
        }
    }

    public convenience init(_ text: String) {
        self.init(Array(text.utf8))
    }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    deinit {
        UnsafeMutableRawPointer(mutating: base).deallocate()
    }
}
