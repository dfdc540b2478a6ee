import Crypto

/// Lower-case hexadecimal.
enum Hex {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// The value of one lower-case hex digit (as `encode` writes them), or nil.
    @inline(__always)
    static func value(ofDigit byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte &- 0x30
        case 0x61...0x66: return byte &- 0x61 &+ 10
        default: return nil
        }
    }

    static func encode<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func encode(_ digest: SHA256.Digest) -> String {
        digest.withUnsafeBytes(encodeRaw)
    }

    /// Hex of raw bytes, written straight into the string's storage.
    static func encodeRaw(_ bytes: UnsafeRawBufferPointer) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { out in
            for index in 0..<bytes.count {
                out[index &* 2] = digits[Int(bytes[index] >> 4)]
                out[index &* 2 &+ 1] = digits[Int(bytes[index] & 0x0F)]
            }
            return bytes.count * 2
        }
    }

    static func encode(_ code: HashedAuthenticationCode<SHA256>) -> String {
        code.withUnsafeBytes(encodeRaw)
    }

    /// Writes the hex of `bytes` (2 × its count) at `out`.
    static func write(_ bytes: UnsafeRawBufferPointer, to out: UnsafeMutableRawPointer) {
        @inline(__always) func digit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? nibble &+ 48 : nibble &+ 87 }
        for index in 0..<bytes.count {
            out.storeBytes(of: digit(bytes[index] >> 4), toByteOffset: index &* 2, as: UInt8.self)
            out.storeBytes(of: digit(bytes[index] & 0x0F), toByteOffset: index &* 2 &+ 1, as: UInt8.self)
        }
    }
}
