#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Fast substring tests on UTF-8 bytes (Foundation's `String.contains` goes through
/// CFString and UTF-16, which dominated rendering profiles).
extension String {
    /// Whether `needle` occurs in `self`, comparing UTF-8 bytes.
    func containsBytes(_ needle: String) -> Bool {
        var haystack = self
        var needle = needle
        return haystack.withUTF8 { h in
            needle.withUTF8 { n in
                firstOffset(of: n, in: h, from: 0) != nil
            }
        }
    }
}

/// Offset of the first occurrence of `needle` in `haystack` at or after `start`.
func firstOffset(of needle: UnsafeBufferPointer<UInt8>, in haystack: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
    guard needle.count > 0, start <= haystack.count, let h = haystack.baseAddress, let n = needle.baseAddress else {
        return needle.count == 0 ? start : nil
    }
    // memchr for the first byte, memcmp for the rest (glibc's memmem needs _GNU_SOURCE).
    var from = start
    let first = Int32(n[0])
    while haystack.count - from >= needle.count {
        guard let hit = memchr(h + from, first, haystack.count - from - needle.count + 1) else { return nil }
        let at = h.distance(to: hit.assumingMemoryBound(to: UInt8.self))
        if memcmp(h + at, n, needle.count) == 0 { return at }
        from = at + 1
    }
    return nil
}
