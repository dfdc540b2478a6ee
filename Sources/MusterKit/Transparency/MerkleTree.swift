import Crypto
import Foundation

/// Merkle tree hashing as RFC 9162 §2.1 defines it (the Certificate Transparency tree):
/// `leaf = SHA-256(0x00 ‖ data)`, `node = SHA-256(0x01 ‖ left ‖ right)`, and a tree of
/// n leaves splits at the largest power of two below n (a left-filled tree).
public enum Merkle {
    /// A SHA-256 value, 32 bytes.
    public typealias Hash = [UInt8]

    /// The root of the empty tree: SHA-256 of nothing.
    public static let emptyRoot: Hash = Array(SHA256.hash(data: [UInt8]()))

    /// `SHA-256(0x00 ‖ data)`.
    public static func leafHash(_ data: some DataProtocol) -> Hash {
        var hasher = SHA256()
        hasher.update(data: [0])
        hasher.update(data: data)
        return Array(hasher.finalize())
    }

    /// `SHA-256(0x01 ‖ left ‖ right)`.
    public static func nodeHash(_ left: Hash, _ right: Hash) -> Hash {
        var hasher = SHA256()
        hasher.update(data: [1])
        hasher.update(data: left)
        hasher.update(data: right)
        return Array(hasher.finalize())
    }

    /// The largest power of two strictly less than `n` (n ≥ 2): where RFC 9162 splits a tree.
    static func split(_ n: Int64) -> Int64 {
        precondition(n >= 2)
        return Int64(1) << (63 - (n - 1).leadingZeroBitCount)
    }

    // MARK: - Storage positions

    /// The lowest level the ledger stores: complete subtrees of 16 leaves and more. Smaller
    /// ones are recomputed from their (at most 8) entries, which keeps an append to about one
    /// stored row per 8 entries.
    static let storedLevel = 4

    /// Where the complete subtree of `level` ≥ `storedLevel` and `index` is stored: its
    /// 1-based place in the order such subtrees complete as leaves are appended (post-order).
    /// Seen as a tree whose leaves are the subtrees of `storedLevel`, the node of height
    /// h = level − storedLevel completes with that tree's leaf m = (index+1)·2^h − 1, after
    /// the 2m − popcount(m) nodes completed before it; so every append adds rows at the end.
    static func position(level: Int, index: Int64) -> Int64 {
        let height = Int64(level - storedLevel)
        let leaf = ((index + 1) << height) - 1
        return 2 * leaf - Int64(leaf.nonzeroBitCount) + height + 1
    }

    /// How many complete subtrees of level ≥ `storedLevel` a tree of `size` leaves has.
    static func storedNodeCount(size: Int64) -> Int64 {
        let units = size >> Int64(storedLevel)
        return 2 * units - Int64(units.nonzeroBitCount)
    }

    // MARK: - Verifying proofs (RFC 9162 §2.1.3.2 and §2.1.4.2)

    /// Why a proof was refused.
    public struct ProofError: Error, Equatable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// Checks an inclusion proof: that `leafHash` is leaf `index` of the tree of `size`
    /// leaves whose root is `root`.
    public static func verifyInclusion(index: Int64, size: Int64, leafHash: Hash, proof: [Hash], root: Hash) throws {
        guard index >= 0, index < size else { throw ProofError("leaf \(index) is not inside a tree of \(size) leaves") }
        guard proof.allSatisfy({ $0.count == 32 }) else { throw ProofError("a proof hash is not 32 bytes long") }
        var fn = index, sn = size - 1
        var r = leafHash
        for p in proof {
            guard sn > 0 else { throw ProofError("the inclusion proof is longer than a tree of \(size) leaves needs") }
            if fn & 1 == 1 || fn == sn {
                r = nodeHash(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                r = nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        guard sn == 0 else { throw ProofError("the inclusion proof is shorter than a tree of \(size) leaves needs") }
        guard r == root else { throw ProofError("the inclusion proof does not lead to the root hash: the leaf or the proof was changed, or they belong to another tree") }
    }

    /// Checks a consistency proof: that the tree of `oldSize` leaves with root `oldRoot` is
    /// the first `oldSize` leaves of the tree of `newSize` leaves with root `newRoot`.
    public static func verifyConsistency(oldSize: Int64, newSize: Int64, oldRoot: Hash, newRoot: Hash, proof: [Hash]) throws {
        guard oldSize >= 1 else { throw ProofError("a tree of \(oldSize) leaves has nothing to prove") }
        guard oldSize <= newSize else { throw ProofError("the old tree (\(oldSize) leaves) is larger than the new one (\(newSize)): entries were removed") }
        guard proof.allSatisfy({ $0.count == 32 }) else { throw ProofError("a proof hash is not 32 bytes long") }
        if oldSize == newSize {
            guard proof.isEmpty else { throw ProofError("a consistency proof between trees of the same size must be empty") }
            guard oldRoot == newRoot else { throw ProofError("both trees have \(oldSize) leaves but different root hashes: the entries were changed") }
            return
        }
        guard !proof.isEmpty else { throw ProofError("the consistency proof is empty") }
        var path = proof
        if oldSize & (oldSize - 1) == 0 { path.insert(oldRoot, at: 0) }
        var fn = oldSize - 1, sn = newSize - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var fr = path[0], sr = path[0]
        for c in path.dropFirst() {
            guard sn > 0 else { throw ProofError("the consistency proof is longer than these sizes need") }
            if fn & 1 == 1 || fn == sn {
                fr = nodeHash(c, fr)
                sr = nodeHash(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                sr = nodeHash(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        guard sn == 0 else { throw ProofError("the consistency proof is shorter than these sizes need") }
        guard fr == oldRoot else { throw ProofError("the consistency proof does not lead to the old root hash: the first \(oldSize) entries were changed") }
        guard sr == newRoot else { throw ProofError("the consistency proof does not lead to the new root hash") }
    }
}

/// A tree whose complete subtrees can be read: the ledger's stored tree, or one in memory.
/// Roots and proofs are built from them as RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1 say.
public protocol MerkleNodeSource {
    /// The hash of the complete subtree of `level` (0 = a leaf) and `index` (its first
    /// leaf is `index << level`).
    func subtree(level: Int, index: Int64) throws -> Merkle.Hash
}

extension MerkleNodeSource {
    /// MTH(D[start:end]) for a range the RFC's recursion visits (start a multiple of the
    /// largest power of two not above end − start).
    func rangeHash(_ start: Int64, _ end: Int64) throws -> Merkle.Hash {
        let n = end - start
        if n & (n - 1) == 0 && start % n == 0 {
            return try subtree(level: n.trailingZeroBitCount, index: start / n)
        }
        let k = Merkle.split(n)
        return Merkle.nodeHash(try rangeHash(start, start + k), try rangeHash(start + k, end))
    }

    /// The root hash of the first `size` leaves.
    public func root(size: Int64) throws -> Merkle.Hash {
        size == 0 ? Merkle.emptyRoot : try rangeHash(0, size)
    }

    /// PATH(index, D[0:size]): the inclusion proof of leaf `index`.
    public func inclusionProof(index: Int64, size: Int64) throws -> [Merkle.Hash] {
        precondition(index >= 0 && index < size)
        var proof: [Merkle.Hash] = []
        var start: Int64 = 0, end = size
        // Walk down from the root, collecting the sibling of each step, then reverse.
        while end - start > 1 {
            let k = Merkle.split(end - start)
            if index - start < k {
                proof.append(try rangeHash(start + k, end))
                end = start + k
            } else {
                proof.append(try rangeHash(start, start + k))
                start += k
            }
        }
        return proof.reversed()
    }

    /// PROOF(oldSize, D[0:newSize]): the consistency proof between the first `oldSize`
    /// leaves and the first `newSize` (empty when they are equal).
    public func consistencyProof(oldSize: Int64, newSize: Int64) throws -> [Merkle.Hash] {
        precondition(oldSize >= 1 && oldSize <= newSize)
        guard oldSize < newSize else { return [] }
        var proof: [Merkle.Hash] = []
        var m = oldSize, start: Int64 = 0, end = newSize
        var complete = true
        while true {
            let n = end - start
            if m == n {
                if !complete { proof.append(try rangeHash(start, end)) }
                break
            }
            let k = Merkle.split(n)
            if m <= k {
                proof.append(try rangeHash(start + k, end))
                end = start + k
            } else {
                proof.append(try rangeHash(start, start + k))
                m -= k
                start += k
                complete = false
            }
        }
        return proof.reversed()
    }
}

/// The right edge of a tree being built leaf by leaf: the hashes of its complete subtrees
/// from the largest (leftmost) to the smallest, one per one bit of `size`.
struct MerkleFrontier: Sendable {
    private(set) var size: Int64 = 0
    private(set) var hashes: [Merkle.Hash] = []

    init() {}

    init(size: Int64, hashes: [Merkle.Hash]) {
        precondition(hashes.count == size.nonzeroBitCount)
        self.size = size
        self.hashes = hashes
    }

    /// Appends a leaf; `completed` is called for every subtree of level ≥ 1 it completes,
    /// lowest first, with that subtree's level, index and hash (the order of `Merkle.position`).
    mutating func append(leaf: Merkle.Hash, completed: (Int, Int64, Merkle.Hash) throws -> Void) rethrows {
        var hash = leaf
        var level = 0
        var rest = size
        while rest & 1 == 1 {
            hash = Merkle.nodeHash(hashes.removeLast(), hash)
            level += 1
            rest >>= 1
            try completed(level, ((size + 1) >> Int64(level)) - 1, hash)
        }
        hashes.append(hash)
        size += 1
    }

    /// The root of the tree so far.
    var root: Merkle.Hash {
        guard var root = hashes.last else { return Merkle.emptyRoot }
        for hash in hashes.dropLast().reversed() { root = Merkle.nodeHash(hash, root) }
        return root
    }

    /// The (level, index) of each complete subtree of the right edge of a tree of `size`
    /// leaves, largest first: what `init(size:hashes:)` expects.
    static func edge(size: Int64) -> [(level: Int, index: Int64)] {
        (0..<64).reversed().compactMap { level in
            size >> Int64(level) & 1 == 1 ? (level, (size >> Int64(level)) - 1) : nil
        }
    }
}

/// A tree held in memory, every complete subtree computed: for tests and small tools.
public struct MemoryMerkleTree: MerkleNodeSource, Sendable {
    private var levels: [[Merkle.Hash]] = [[]]

    public init(leafHashes: [Merkle.Hash] = []) {
        for leaf in leafHashes { append(leafHash: leaf) }
    }

    public var size: Int64 { Int64(levels[0].count) }

    public mutating func append(leafHash: Merkle.Hash) {
        levels[0].append(leafHash)
        var level = 0
        while levels[level].count % 2 == 0 {
            let count = levels[level].count
            let node = Merkle.nodeHash(levels[level][count - 2], levels[level][count - 1])
            if levels.count == level + 1 { levels.append([]) }
            levels[level + 1].append(node)
            level += 1
        }
    }

    public func subtree(level: Int, index: Int64) throws -> Merkle.Hash {
        guard level < levels.count, index >= 0, index < Int64(levels[level].count) else {
            throw Merkle.ProofError("the tree has no complete subtree at level \(level), index \(index)")
        }
        return levels[level][Int(index)]
    }
}
