/// Keyed codes held in memory — signature fingerprints (32-byte HMACs) or mailbox keys
/// (their first 16 bytes) — for a bulk append that checks duplicates itself while the
/// unique indexes are rebuilt.
///
/// Exact: the full `width` words of every key are kept and compared. About 24–48 bytes
/// per 16-byte key, 40–64 per 32-byte one (the keys, packed, plus a table of 64-bit slots
/// at most half full); the keys are keyed HMACs, so their first word is already an even hash.
final class FingerprintSet {
    /// `width` words per key, in insertion order; room for `keyCapacity` keys.
    private var keys: UnsafeMutablePointer<UInt64>
    private var keyCapacity: Int
    /// 64-bit words per key: 4 for fingerprints, 2 for mailbox keys.
    let width: Int
    /// 0 for an empty slot, otherwise the key's index plus one in the low 32 bits and
    /// 32 bits of the key in the high ones (so most probes need not read the key).
    private var slots: UnsafeMutablePointer<UInt64>
    private var mask: Int
    private(set) var count = 0

    /// Room for `capacity` keys before it grows; `width` 4 for fingerprints, 2 for
    /// mailbox keys (whose `FingerprintKey` has two words of zeros after them).
    init(capacity: Int, width: Int = 4) {
        precondition(width == 2 || width == 4)
        var size = 1024
        while size < capacity * 2 { size <<= 1 }
        slots = .allocate(capacity: size)
        slots.initialize(repeating: 0, count: size)
        mask = size - 1
        self.width = width
        keyCapacity = max(capacity, 16)
        keys = .allocate(capacity: keyCapacity * width)
    }

    var isEmpty: Bool { count == 0 }

    deinit {
        slots.deallocate()
        keys.deallocate()
    }

    /// Adds the fingerprint written as 64 lower-case hex digits (as stored): true when it
    /// was new, false when already present, nil when `hex` is not such a fingerprint.
    func insert(hex: String) -> Bool? {
        guard let key = FingerprintKey(hex: hex) else { return nil }
        return insert(key)
    }

    /// Adds the fingerprint given as its 32 raw bytes (the HMAC itself): true when new.
    func insert(_ key: FingerprintKey) -> Bool {
        insert((key.words.0, key.words.1, key.words.2, key.words.3))
    }

    /// Adds the fingerprint given as its raw hex bytes (see `insert(hex:)`).
    func insert(hexBytes: UnsafeRawBufferPointer) -> Bool? {
        guard let key = Self.decode(UnsafeBufferPointer(start: hexBytes.baseAddress?.assumingMemoryBound(to: UInt8.self), count: hexBytes.count)) else { return nil }
        return insert(key)
    }

    /// Whether the key is in the set (without adding it).
    func contains(_ key: FingerprintKey) -> Bool {
        if case .found = find((key.words.0, key.words.1, key.words.2, key.words.3)) { return true }
        return false
    }

    private enum Probe {
        case found
        case empty(slot: Int)
    }

    private func find(_ key: (UInt64, UInt64, UInt64, UInt64)) -> Probe {
        let slots = self.slots, keys = self.keys, mask = self.mask, width = self.width
        var slot = Int(truncatingIfNeeded: key.0) & mask
        let tag = key.1 & 0xFFFF_FFFF_0000_0000
        while true {
            let entry = slots[slot]
            if entry == 0 { return .empty(slot: slot) }
            if entry & 0xFFFF_FFFF_0000_0000 == tag {
                let stored = keys + (Int(truncatingIfNeeded: entry & 0xFFFF_FFFF) &- 1) &* width
                if stored[0] == key.0 && stored[1] == key.1 && (width == 2 || (stored[2] == key.2 && stored[3] == key.3)) {
                    return .found
                }
            }
            slot = (slot &+ 1) & mask
        }
    }

    private func insert(_ key: (UInt64, UInt64, UInt64, UInt64)) -> Bool {
        guard case .empty(let slot) = find(key) else { return false }
        let width = self.width
        let index = count
        if index == keyCapacity {
            let larger = UnsafeMutablePointer<UInt64>.allocate(capacity: keyCapacity * 2 * width)
            larger.moveInitialize(from: keys, count: index * width)
            keys.deallocate()
            self.keys = larger
            keyCapacity *= 2
        }
        let stored = self.keys + index &* width
        stored.initialize(to: key.0)
        (stored + 1).initialize(to: key.1)
        if width == 4 {
            (stored + 2).initialize(to: key.2)
            (stored + 3).initialize(to: key.3)
        }
        count = index + 1
        slots[slot] = key.1 & 0xFFFF_FFFF_0000_0000 | UInt64(index + 1)
        if (index + 1) * 2 > mask + 1 { grow() }
        return true
    }

    private func grow() {
        let size = (mask + 1) * 2
        let fresh = UnsafeMutablePointer<UInt64>.allocate(capacity: size)
        fresh.initialize(repeating: 0, count: size)
        let newMask = size - 1
        for slot in 0...mask where slots[slot] != 0 {
            let entry = slots[slot]
            let index = Int(truncatingIfNeeded: entry & 0xFFFF_FFFF) - 1
            var target = Int(truncatingIfNeeded: keys[index &* width]) & newMask
            while fresh[target] != 0 { target = (target &+ 1) & newMask }
            fresh[target] = entry
        }
        slots.deallocate()
        slots = fresh
        mask = newMask
    }

    static func decode(_ bytes: UnsafeBufferPointer<UInt8>) -> (UInt64, UInt64, UInt64, UInt64)? {
        guard bytes.count == 64 else { return nil }
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        for word in 0..<4 {
            var value: UInt64 = 0
            for index in (word &* 16)..<(word &* 16 &+ 16) {
                guard let digit = Hex.value(ofDigit: bytes[index]) else { return nil }
                value = value << 4 | UInt64(digit)
            }
            switch word {
            case 0: words.0 = value
            case 1: words.1 = value
            case 2: words.2 = value
            default: words.3 = value
            }
        }
        return words
    }
}

/// A fingerprint's 32 bytes as four big-endian words (the order its hex is written in).
struct FingerprintKey: Sendable {
    var words: (UInt64, UInt64, UInt64, UInt64)

    /// A 16-byte mailbox key (the start of a keyed code, so as even as a fingerprint),
    /// as the first two words; the other two are 0.
    init(mailboxKey bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == 16)
        words = (UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                 UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)), 0, 0)
    }

    init(words: (UInt64, UInt64, UInt64, UInt64)) {
        self.words = words
    }

    /// A fingerprint's raw hex bytes (as stored); nil unless 64 lower-case hex digits.
    init?(hexBytes: UnsafeRawBufferPointer) {
        guard let words = FingerprintSet.decode(UnsafeBufferPointer(start: hexBytes.baseAddress?.assumingMemoryBound(to: UInt8.self), count: hexBytes.count)) else { return nil }
        self.words = words
    }

    /// A fingerprint written as 64 lower-case hex digits (as stored); nil for anything else.
    init?(hex: String) {
        var text = hex
        guard let words = text.withUTF8({ FingerprintSet.decode($0) }) else { return nil }
        self.words = words
    }

    /// A mailbox key read back, nil unless it has 16 bytes.
    init?(storedMailboxKey bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 16 else { return nil }
        self.init(mailboxKey: bytes)
    }

    init(_ bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == 32)
        words = (UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                 UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
                 UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
                 UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self)))
    }
}
