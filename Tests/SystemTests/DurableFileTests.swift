import Glibc
import System
import Testing

@Suite struct DurableFileTests {
    private func temporaryDirectory() -> String {
        var template = Array("/tmp/system-tests-XXXXXX".utf8CString)
        return String(cString: mkdtemp(&template)!)
    }

    @Test func aWriteReplacesTheFileWholeAndLeavesNoTemporary() throws {
        let directory = temporaryDirectory() + "/a/b"
        try DurableFile.makeDirectory(directory)
        let path = directory + "/state"
        #expect(try DurableFile.read(path) == nil)
        try DurableFile.write(path, Array("first".utf8))
        try DurableFile.write(path, Array("second".utf8))
        #expect(try DurableFile.read(path) == Array("second".utf8))
        #expect(access(path + ".tmp", F_OK) != 0)
    }

    @Test func aWriteIntoAMissingDirectoryNamesTheTemporaryFile() {
        let path = temporaryDirectory() + "/missing/state"
        #expect(throws: SystemError("open", path: path + ".tmp", errno: ENOENT)) {
            try DurableFile.write(path, [1])
        }
    }
}
