import Glibc
import System
import Testing

@Suite struct SystemErrorTests {
    @Test func descriptionNamesTheCallThePathAndErrnoText() {
        let error = SystemError("open", path: "/nowhere/file", errno: ENOENT)
        #expect(error.description == "open /nowhere/file failed: No such file or directory (errno 2)")
        #expect(error.message == "No such file or directory")
    }

    @Test func descriptionWithoutAPathNamesTheCall() {
        #expect(SystemError("epoll_create1", errno: EMFILE).description == "epoll_create1 failed: Too many open files (errno 24)")
    }

    @Test func errnoIsCapturedWhenTheErrorIsMade() {
        errno = EACCES
        let error = SystemError("bind")
        errno = 0
        #expect(error.errno == EACCES)
    }

    @Test func aRealFailureCarriesItsCallAndErrno() {
        #expect(throws: SystemError("open", path: "/nonexistent-bridge-dir/x", errno: ENOENT)) {
            try Syscall.retrying("open", path: "/nonexistent-bridge-dir/x") { open("/nonexistent-bridge-dir/x", O_RDONLY) }
        }
    }
}
