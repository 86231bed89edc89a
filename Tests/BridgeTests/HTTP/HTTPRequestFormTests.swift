import Testing
@testable import Bridge

struct HTTPRequestFormTests {
    private func request(body: String, headers: [(String, String)] = []) -> HTTPRequest {
        var fields = HTTPHeaders()
        for (name, value) in headers { fields.add(name, value) }
        return HTTPRequest(method: "POST", target: "/", path: "/", headers: fields, body: Array(body.utf8))
    }

    @Test func formFieldsDecodeAsJQuerySendsThem() throws {
        let fields = try #require(request(body: "name=Ana+Lu&message=caf%C3%A9+%26+co&empty=&flag").formFields)
        #expect(fields.map(\.name) == ["name", "message", "empty", "flag"])
        #expect(fields.map(\.value) == ["Ana Lu", "café & co", "", ""])
        #expect(request(body: "").formFields?.isEmpty == true)
        #expect(request(body: "bad=%ZZ").formFields == nil)
        #expect(request(body: "bad=%FF").formFields == nil)
    }

    @Test func bearerTokensAreReadFromTheAuthorizationHeader() {
        #expect(request(body: "", headers: [("Authorization", "Bearer abc.def")]).bearerToken == "abc.def")
        #expect(request(body: "", headers: [("Authorization", "bearer  abc")]).bearerToken == "abc")
        #expect(request(body: "", headers: [("Authorization", "Basic abc")]).bearerToken == nil)
        #expect(request(body: "", headers: [("Authorization", "Bearer")]).bearerToken == nil)
        #expect(request(body: "").bearerToken == nil)
    }
}
