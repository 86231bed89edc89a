import Glibc

// libFuzzer entry points of the handler targets, one binary for all three (built by
// scripts/fuzz.sh as .fuzz/handlers from every source of Support and Bridge plus this folder;
// .fuzz/api, .fuzz/session and .fuzz/seedform are symlinks to it). The name the binary is run
// under picks the target, so a crash reproduces with `.fuzz/<target> <input>`.
//
//   SWIFT_BACKTRACE=enable=no .fuzz/api -max_total_time=60 .fuzz/corpus-api Tests/Fuzz/corpus/api

enum HandlerTarget {
    case api, session, seedform

    init?(programName: String) {
        switch programName.split(separator: "/").last.map(String.init) ?? "" {
        case "api": self = .api
        case "session": self = .session
        case "seedform": self = .seedform
        default: return nil
        }
    }

    nonisolated(unsafe) static var current: HandlerTarget = .api
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>) -> CInt {
    let name = argv.pointee[0].map { String(cString: $0) } ?? ""
    guard let target = HandlerTarget(programName: name) else {
        fatalError("run this binary as api, session or seedform (a symlink of that name), not \(name)")
    }
    HandlerTarget.current = target
    _ = FuzzBroker.shared
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))[...]
    switch HandlerTarget.current {
    case .api: APIFuzz.run(input)
    case .session: SessionFuzz.run(input)
    case .seedform: SeedFormFuzz.run(input)
    }
    return 0
}
