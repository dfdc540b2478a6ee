import Foundation

/// A file written beside its final name and renamed into place, so that a crash never
/// leaves half of it behind.
public final class AtomicFile {
    /// The final location.
    public let url: URL
    let temporaryPath: String
    /// The open descriptor of the temporary file.
    public let descriptor: Int32
    private var finished = false

    /// Creates the temporary file with `permissions` (0600 for personal data).
    public init(_ url: URL, permissions: mode_t) throws {
        self.url = url
        (temporaryPath, descriptor) = try Self.createTemporary(for: url, permissions: permissions)
    }

    /// Creates `temporaryPath(of: url)` afresh with exactly `permissions`, open for writing.
    static func createTemporary(for url: URL, permissions: mode_t) throws -> (path: String, descriptor: Int32) {
        let path = temporaryPath(of: url)
        unlink(path)
        let fd = Foundation.open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, permissions)
        guard fd >= 0 else {
            throw MusterError.failure("cannot write \(url.path): \(String(cString: strerror(errno)))")
        }
        fchmod(fd, permissions) // whatever the umask
        return (path, fd)
    }

    /// Flushes to disk and renames the file into place.
    public func commit() throws {
        guard !finished else { return }
        finished = true
        fsync(descriptor)
        close(descriptor)
        try Self.rename(temporaryPath, over: url)
    }

    /// `.<name>.tmp-<pid>` beside `url`: where a file is written before it is renamed into place.
    static func temporaryPath(of url: URL, pid: Int32 = getpid()) -> String {
        url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(pid)").path
    }

    /// Renames the complete file at `staged` over `url`; on failure removes it and throws.
    static func rename(_ staged: String, over url: URL) throws {
        if Foundation.rename(staged, url.path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(staged)
            throw MusterError.failure("cannot write \(url.path): \(reason)")
        }
    }

    /// Deletes the temporary file; the final location is untouched.
    public func discard() {
        guard !finished else { return }
        finished = true
        close(descriptor)
        unlink(temporaryPath)
    }

    deinit { discard() }
}

/// Writing bytes to a descriptor.
enum FileOutput {
    /// Writes all of `bytes`; a failure names `path` when given.
    static func writeAll(_ descriptor: Int32, _ bytes: [UInt8], path: String? = nil) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { raw in
                Foundation.write(descriptor, raw.baseAddress! + offset, raw.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw MusterError(.temporary, "cannot write\(path.map { " \($0)" } ?? ""): \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }
}

/// Writing whole files at once so that a crash never leaves half a file behind.
public enum FileWriter {
    /// Writes `data` to a temporary file beside `url`, flushes it to disk, then renames it
    /// into place. Does nothing when the file already holds exactly `data`.
    public static func writeAtomically(_ data: Data, to url: URL, permissions: Int = 0o644) throws {
        if let existing = try? Data(contentsOf: url), existing == data { return }
        let file = try AtomicFile(url, permissions: mode_t(permissions))
        try FileOutput.writeAll(file.descriptor, Array(data), path: url.path) // a failure discards the file (deinit)
        try file.commit()
    }
}
