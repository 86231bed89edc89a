import Testing
@testable import Bridge

struct SeedFieldsTests {
    private func form(_ body: String) -> HTTPRequest {
        var headers = HTTPHeaders()
        headers.add("Content-Type", "application/x-www-form-urlencoded")
        return HTTPRequest(method: "POST", target: "/", path: "/", headers: headers, body: Array(body.utf8))
    }

    private func json(_ body: String) -> HTTPRequest {
        var headers = HTTPHeaders()
        headers.add("Content-Type", "application/json")
        return HTTPRequest(method: "POST", target: "/", path: "/", headers: headers, body: Array(body.utf8))
    }

    private func pairs(_ result: Result<[JSONObject.Member], SeedAPI.FieldsRefusal>) -> [String]? {
        guard case .success(let members) = result else { return nil }
        return members.map { "\($0.key)=\($0.value.stringValue ?? $0.value.serialized)" }
    }

    @Test func aRepeatedNameKeepsItsLastValueAtItsLastPlace() {
        #expect(pairs(SeedAPI.fields(of: form("a=1&b=2&a=3&c=4&b=5"))) == ["a=3", "c=4", "b=5"])
        #expect(pairs(SeedAPI.fields(of: json(#"{"a":"1","b":2,"a":"3"}"#))) == ["b=2", "a=3"])
    }

    @Test func manyRepeatsOfOneNameAreOneField() {
        let body = (0..<SeedAPI.maxFields).map { "name=\($0)" }.joined(separator: "&")
        #expect(pairs(SeedAPI.fields(of: form(body))) == ["name=\(SeedAPI.maxFields - 1)"])
    }

    @Test func moreFieldsThanTheCapAreRefused() {
        let atCap = (0..<SeedAPI.maxFields).map { "f\($0)=x" }.joined(separator: "&")
        #expect(pairs(SeedAPI.fields(of: form(atCap)))?.count == SeedAPI.maxFields)
        guard case .failure(.tooMany(let count)) = SeedAPI.fields(of: form(atCap + "&one=more")) else {
            Issue.record("a form over the cap was accepted")
            return
        }
        #expect(count == SeedAPI.maxFields + 1)
        let members = (0...SeedAPI.maxFields).map { #""k\#($0)":1"# }.joined(separator: ",")
        guard case .failure(.tooMany) = SeedAPI.fields(of: json("{" + members + "}")) else {
            Issue.record("a JSON body over the cap was accepted")
            return
        }
    }

    @Test func malformedBodiesAreRefused() {
        guard case .failure(.malformed) = SeedAPI.fields(of: form("a=%ZZ")),
              case .failure(.malformed) = SeedAPI.fields(of: json("[1]")) else {
            Issue.record("a malformed body was accepted")
            return
        }
    }
}
