import COpenSSL
import Foundation
import Glibc

/// A blocking TLS client for in-process server tests. It trusts any certificate (these tests are
/// about the server's transport, not about verification) and counts the encrypted records it
/// receives, which is how a test sees whether the server coalesced its writes.
final class TLSTestClient: StreamTestClient {
    private let tcp: TestClient
    private let context: OpaquePointer
    private let ssl: OpaquePointer
    /// Application-data records received (TLS 1.3 sends every encrypted record as that type).
    private(set) var recordsReceived = 0

    init(port: Int, serverName: String? = "localhost", alpn: [String] = ["http/1.1"], receiveBuffer: Int32? = nil) throws {
        tcp = try TestClient(port: port, receiveBuffer: receiveBuffer)
        context = SSL_CTX_new(TLS_client_method())
        ssl = SSL_new(context)
        SSL_set_fd(ssl, tcp.fd)
        if let serverName { _ = bridge_SSL_set_host_name(ssl, serverName) }
        if !alpn.isEmpty {
            let wire = alpn.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
            _ = SSL_set_alpn_protos(ssl, wire, UInt32(wire.count))
        }
        SSL_set_msg_callback(ssl, countRecords)
        _ = bridge_SSL_set_msg_callback_arg(ssl, Unmanaged.passUnretained(self).toOpaque())
        guard SSL_connect(ssl) == 1 else {
            ERR_clear_error()
            throw TestClientError.failed("TLS handshake failed")
        }
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(context)
    }

    fileprivate func recordArrived() { recordsReceived += 1 }

    var negotiatedProtocol: String? {
        var name: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &name, &length)
        guard let name, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: name, count: Int(length)), as: UTF8.self)
    }

    var version: String { String(cString: SSL_get_version(ssl)) }

    func send(_ bytes: [UInt8]) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { SSL_write(ssl, $0.baseAddress! + sent, Int32(bytes.count - sent)) }
            if n <= 0 { return }
            sent += Int(n)
        }
    }

    func read(exactly count: Int) -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while result.count < count {
            let n = buffer.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32(min($0.count, count - result.count))) }
            if n <= 0 { break }
            result += buffer[0..<Int(n)]
        }
        return result
    }
}

private func countRecords(_ writing: Int32, _ version: Int32, _ contentType: Int32, _ bytes: UnsafeRawPointer?, _ length: Int,
                          _ ssl: OpaquePointer?, _ argument: UnsafeMutableRawPointer?) {
    // The header of each record read: 5 bytes, the first its outer content type (23: application data).
    guard writing == 0, contentType == SSL3_RT_HEADER, length >= 5, let bytes, let argument,
          bytes.load(as: UInt8.self) == 23 else { return }
    Unmanaged<TLSTestClient>.fromOpaque(argument).takeUnretainedValue().recordArrived()
}

/// A self-signed certificate and key for `localhost`, made with the `openssl` command in a fresh
/// temporary directory (never committed).
struct TestCertificate {
    let directory: String
    var certificatePath: String { directory + "/cert.pem" }
    var keyPath: String { directory + "/key.pem" }

    init(commonName: String = "localhost") throws {
        directory = NSTemporaryDirectory() + "bridge-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                             "-days", "2", "-subj", "/CN=\(commonName)", "-addext", "subjectAltName=DNS:\(commonName)",
                             "-keyout", directory + "/key.pem", "-out", directory + "/cert.pem"]
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        guard openssl.terminationStatus == 0 else { throw TestClientError.failed("openssl req failed") }
    }
}
