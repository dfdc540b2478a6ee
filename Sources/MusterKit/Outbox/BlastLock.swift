import Foundation

/// An exclusive lock on a campaign's outbox, so two blasts never send the same rows.
final class BlastLock {
    private var descriptor: Int32

    init(_ url: URL) throws {
        descriptor = open(url.path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw MusterError.failure("cannot create \(url.path): \(String(cString: strerror(errno)))") }
        if flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            close(descriptor)
            descriptor = -1
            throw MusterError(.temporary, "another `muster mail send` is running for this campaign; wait for it to finish")
        }
    }

    func release() {
        if descriptor >= 0 { flock(descriptor, LOCK_UN); close(descriptor); descriptor = -1 }
    }

    deinit { release() }
}
