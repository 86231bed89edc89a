import Glibc

/// A test CA and server certificates it signed, made with the `openssl` command in a temporary
/// directory of their own (removed when released), so no key is ever committed. EC P-256 keys,
/// valid for two days.
public final class TestCertificates: @unchecked Sendable {
    public let directory: String
    /// The CA's certificate: what a client trusts with `RedisOptions.tlsCAFile`.
    public var caFile: String { directory + "/ca.pem" }

    public init() throws {
        var template = Array("/tmp/bridge-test-tls-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestFailure("mkdtemp: errno \(errno)") }
        directory = String(cString: made)
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", directory + "/ca.key", "-out", caFile, "-days", "2", "-subj", "/CN=Bridge test CA",
                     "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    }

    deinit {
        if let entries = opendir(directory) {
            while let entry = readdir(entries) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name != "." && name != ".." { unlink(directory + "/" + name) }
            }
            closedir(entries)
        }
        rmdir(directory)
    }

    /// A certificate and key for a server reachable as `names` (IP addresses as IP SANs, the
    /// rest as DNS SANs), signed by this CA. `label` names the files.
    public func serverCertificate(_ label: String, names: [String]) throws -> (certificate: String, key: String) {
        let base = directory + "/" + label
        let alternativeNames = names.map { isIPAddress($0) ? "IP:\($0)" : "DNS:\($0)" }.joined(separator: ",")
        let extensions = "subjectAltName=\(alternativeNames)\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
        guard let file = fopen(base + ".ext", "w") else { throw TestFailure("cannot write \(base).ext") }
        fputs(extensions, file)
        fclose(file)
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", base + ".key", "-out", base + ".csr", "-subj", "/CN=\(names.first ?? label)"])
        try openssl(["x509", "-req", "-in", base + ".csr", "-CA", caFile, "-CAkey", directory + "/ca.key",
                     "-CAcreateserial", "-out", base + ".pem", "-days", "2", "-extfile", base + ".ext"])
        return (base + ".pem", base + ".key")
    }

    /// Runs `openssl` with `arguments`, its output thrown away; throws unless it exits 0.
    private func openssl(_ arguments: [String]) throws {
        let candidates = ["/usr/bin/openssl", "/usr/local/bin/openssl"]
        guard let binary = candidates.first(where: { access($0, X_OK) == 0 }) else {
            throw TestFailure("the openssl command is not installed")
        }
        let child = try spawnQuietly([binary] + arguments)
        var status: Int32 = 0
        waitpid(child, &status, 0)
        guard status == 0 else { throw TestFailure("openssl \(arguments.prefix(2).joined(separator: " ")) failed (status \(status))") }
    }

    private func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}

/// Starts `arguments[0]` with stdout and stderr on /dev/null; returns its pid.
func spawnQuietly(_ arguments: [String]) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    var argv = arguments.map { strdup($0) }
    argv.append(nil)
    defer { for pointer in argv { free(pointer) } }
    var child: pid_t = 0
    let status = posix_spawn(&child, arguments[0], &actions, nil, argv, environ)
    guard status == 0 else { throw TestFailure("posix_spawn \(arguments[0]): \(String(cString: strerror(status)))") }
    return child
}
