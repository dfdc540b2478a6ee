import Foundation

/// A file of personal data (an import's rejects) written in full before it appears
/// under its final name, and which leaves nothing behind if the process dies first.
///
/// On Linux it is an unnamed file (`O_TMPFILE`) in the target's folder: it has no name
/// until `commit` links it in, so a `kill -9` at any moment leaves no file at all.
/// Where unnamed files are not available (another system, a file system without
/// them), it falls back to `.<name>.tmp-<pid>` beside the target, which
/// `removeLeftovers(of:)` deletes on the next run once that process is gone.
public final class PrivateFile {
    /// The final location.
    public let url: URL
    /// The open descriptor of the file being written.
    public let descriptor: Int32
    /// The named temporary file of the fallback; nil for an unnamed file.
    let temporaryPath: String?
    private var finished = false

    /// `.<name>.tmp-<pid>`: where the fallback writes, and where `commit` links an
    /// unnamed file for the instant before renaming it over `url`.
    static func temporaryPath(of url: URL, pid: Int32 = getpid()) -> String {
        AtomicFile.temporaryPath(of: url, pid: pid)
    }

    /// Creates the file with `permissions` (0600 for personal data).
    public init(_ url: URL, permissions: mode_t) throws {
        self.url = url
        Self.removeLeftovers(of: url)
        let folder = url.deletingLastPathComponent().path
        #if os(Linux)
        let unnamed = Foundation.open(folder, Self.tmpfileFlag | O_WRONLY | O_CLOEXEC, permissions)
        #else
        let unnamed: Int32 = -1
        #endif
        if unnamed >= 0 {
            fchmod(unnamed, permissions)
            descriptor = unnamed
            temporaryPath = nil
            return
        }
        // ENOENT and EACCES are about the folder: the fallback would fail the same way.
        if errno == ENOENT || errno == EACCES || errno == ENOTDIR {
            throw MusterError.failure("cannot write \(url.path): \(String(cString: strerror(errno)))")
        }
        let named = try AtomicFile.createTemporary(for: url, permissions: permissions)
        descriptor = named.descriptor
        temporaryPath = named.path
    }

    #if os(Linux)
    /// `O_TMPFILE` (`__O_TMPFILE | O_DIRECTORY`), which Glibc's module map does not export.
    static var tmpfileFlag: Int32 { 0o20000000 | O_DIRECTORY }
    #endif

    /// Flushes to disk and puts the file in place, replacing what was there.
    public func commit() throws {
        guard !finished else { return }
        finished = true
        defer { close(descriptor) }
        fsync(descriptor)
        let staged = temporaryPath ?? Self.temporaryPath(of: url)
        if temporaryPath == nil {
            // Give the unnamed file a name beside the target, then rename it over the
            // target (linkat cannot replace a file). Only a complete file is ever named.
            unlink(staged)
            if linkat(AT_FDCWD, "/proc/self/fd/\(descriptor)", AT_FDCWD, staged, AT_SYMLINK_FOLLOW) != 0 {
                throw MusterError.failure("cannot write \(url.path): \(String(cString: strerror(errno)))")
            }
        }
        try AtomicFile.rename(staged, over: url)
    }

    /// Drops the file; the final location is untouched.
    public func discard() {
        guard !finished else { return }
        finished = true
        close(descriptor)
        if let temporaryPath { unlink(temporaryPath) }
    }

    deinit { discard() }

    /// Deletes `.<name>.tmp-<pid>` files beside `url` left by processes that no longer
    /// run (killed mid-write by this or an earlier version of muster).
    public static func removeLeftovers(of url: URL) {
        let folder = url.deletingLastPathComponent()
        let prefix = ".\(url.lastPathComponent).tmp-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return }
        for name in names where name.hasPrefix(prefix) {
            guard let pid = Int32(name.dropFirst(prefix.count)), pid > 0 else { continue }
            if pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH { continue }
            unlink(folder.appendingPathComponent(name).path)
        }
    }
}
