import Bridge
import Foundation
import Testing

/// Loading and reloading certificates: a broken file never replaces a working one.
@Suite struct TLSServerTests {
    private func settings(_ certificate: TestCertificate) -> TLSSettings {
        TLSSettings(port: 0, defaultCertificate: TLSCertificateFiles(certificatePath: certificate.certificatePath,
                                                                    keyPath: certificate.keyPath))
    }

    private func replace(_ path: String, with contents: String) throws {
        // A new file moved into place, as certificate renewals do it.
        try contents.write(toFile: path + ".new", atomically: false, encoding: .utf8)
        _ = rename(path + ".new", path)
    }

    @Test func aBrokenCertificateIsRefusedAtStart() throws {
        let certificate = try TestCertificate()
        try replace(certificate.certificatePath, with: "not a certificate\n")
        #expect(throws: OpenSSLError.self) { try TLSServer(settings(certificate)) }
    }

    @Test func aKeyOfAnotherCertificateIsRefused() throws {
        let certificate = try TestCertificate()
        let other = try TestCertificate()
        var mismatched = settings(certificate)
        mismatched.defaultCertificate.keyPath = other.keyPath
        let error = #expect(throws: OpenSSLError.self) { try TLSServer(mismatched) }
        #expect(error?.description.contains(other.keyPath) == true, "\(String(describing: error))")
    }

    @Test func changedFilesAreReloadedOnceAndABrokenChangeIsTriedOnce() throws {
        let certificate = try TestCertificate()
        let server = try TLSServer(settings(certificate))
        #expect(try server.reloadIfFilesChanged() == false)

        let good = try String(contentsOfFile: certificate.certificatePath, encoding: .utf8)
        try replace(certificate.certificatePath, with: "-----BEGIN CERTIFICATE-----\ngarbage\n")
        #expect(throws: OpenSSLError.self) { try server.reloadIfFilesChanged() }
        // The same broken files are not tried (and logged) again on every poll.
        #expect(try server.reloadIfFilesChanged() == false)

        // The renewal completes: a new certificate with the same key.
        try replace(certificate.certificatePath, with: good)
        #expect(try server.reloadIfFilesChanged() == true)
        #expect(try server.reloadIfFilesChanged() == false)
    }
}
