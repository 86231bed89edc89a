/// A JSON object's members in input order, duplicates kept, each with where its value came from.
public struct JSONObject: Sendable, Equatable {
    public struct Member: Sendable, Equatable {
        public let key: String
        public let value: JSON
        /// Byte range of the value's text in the input given to JSONParser.parse (for nested objects too:
        /// always offsets into the ORIGINAL input). Lets callers pass a value through byte for byte.
        public let raw: Range<Int>

        public init(key: String, value: JSON, raw: Range<Int>) {
            self.key = key
            self.value = value
            self.raw = raw
        }

        /// Compares key and value only: the same value parsed from differently spaced text is equal.
        public static func == (lhs: Member, rhs: Member) -> Bool {
            sameKey(lhs.key, rhs.key) && lhs.value == rhs.value
        }
    }

    public var members: [Member]

    public init(members: [Member] = []) {
        self.members = members
    }

    /// The value for `key`; with duplicate keys the LAST one wins (as JavaScript's JSON.parse).
    public subscript(key: String) -> JSON? {
        member(key)?.value
    }

    /// The last member named `key`.
    public func member(_ key: String) -> Member? {
        members.last { Self.sameKey($0.key, key) }
    }

    /// Keys match byte for byte, as in JavaScript: Swift's `==` would also match canonically
    /// equivalent spellings ("é" and "e\u{301}"), which a peer's parser would treat as different keys.
    static func sameKey(_ a: String, _ b: String) -> Bool {
        a.utf8.elementsEqual(b.utf8)
    }
}
