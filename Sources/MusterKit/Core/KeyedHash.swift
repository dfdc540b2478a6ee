import Crypto

/// HMAC-SHA256 (RFC 2104) for one key, with the key's two padded blocks hashed once:
/// the same codes as swift-crypto's `HMAC<SHA256>`, computed through SHA256's buffer
/// update without a generic `DataProtocol` walk or joining the message's parts first.
/// An import computes two per row (the fingerprint and the mailbox key).
struct KeyedHash: @unchecked Sendable {
    // SHA256 is a value type (its context is copied on write): each call works on copies.
    private let inner: SHA256
    private let outer: SHA256

    init(key: [UInt8]) {
        var block = key.count > 64 ? Array(SHA256.hash(data: key)) : key
        block += repeatElement(0, count: 64 - block.count)
        var inner = SHA256(), outer = SHA256()
        inner.update(data: block.map { $0 ^ 0x36 })
        outer.update(data: block.map { $0 ^ 0x5C })
        self.inner = inner
        self.outer = outer
    }

    /// The code of `first` followed by `second`.
    func code(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer? = nil) -> SHA256.Digest {
        var hasher = inner
        hasher.update(bufferPointer: first)
        if let second { hasher.update(bufferPointer: second) }
        let digest = hasher.finalize()
        var outerHasher = outer
        digest.withUnsafeBytes { outerHasher.update(bufferPointer: $0) }
        return outerHasher.finalize()
    }

    /// The code of the UTF-8 of `text`.
    func code(_ text: String) -> SHA256.Digest {
        var text = text
        return text.withUTF8 { code(UnsafeRawBufferPointer($0)) }
    }

    /// The code of the UTF-8 of `prefix` followed by that of `text`.
    func code(_ prefix: StaticString, _ text: String) -> SHA256.Digest {
        var text = text
        return text.withUTF8 { bytes in
            code(UnsafeRawBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount), UnsafeRawBufferPointer(bytes))
        }
    }
}
