import Foundation

/// The exit statuses of SPEC.md, shared by every command.
public enum ExitStatus: Int32, Sendable {
    /// The command did what was asked (a duplicate signature included).
    case success = 0
    /// Something went wrong that is not the user's input.
    case failure = 1
    /// The command line itself is wrong.
    case usage = 64
    /// The input data is wrong: a field, a file, a manifest.
    case badInput = 65
    /// The SMTP relay cannot be reached.
    case relayUnreachable = 69
    /// A temporary failure: running the same command again may succeed.
    case temporary = 75
}

/// A failure to report to the user: a short message and the exit status it maps to.
///
/// Messages are lower-case, actionable, and name the file, line or value at fault,
/// but never personal data the user did not type in this very command.
public struct MusterError: Error, CustomStringConvertible, Sendable {
    /// The exit status the command ends with.
    public let status: ExitStatus
    /// What went wrong and, where possible, what to do.
    public let message: String
    /// Further lines (e.g. one per manifest problem) printed after the message.
    public let details: [String]

    public init(_ status: ExitStatus, _ message: String, details: [String] = []) {
        self.status = status
        self.message = message
        self.details = details
    }

    public var description: String { message }

    /// Bad input data (exit 65).
    public static func badInput(_ message: String) -> MusterError { MusterError(.badInput, message) }
    /// A usage problem (exit 64).
    public static func usage(_ message: String) -> MusterError { MusterError(.usage, message) }
    /// A general failure (exit 1).
    public static func failure(_ message: String) -> MusterError { MusterError(.failure, message) }
}

extension MusterError {
    /// Translates an SQLite failure on `path` into a message a user can act on.
    static func storage(_ error: SQLiteError, path: String) -> MusterError {
        switch error.primaryCode {
        case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
            return MusterError(.temporary, "the ledger \(path) is busy (another muster is writing); try again")
        case 13: // SQLITE_FULL
            return MusterError(.temporary, "the disk is full while writing \(path); nothing was written, free some space and try again")
        case 10: // SQLITE_IOERR
            let reason = writeFailureReason(error, path: path) ?? "input/output error"
            return MusterError(.temporary, "\(reason) while writing \(path) (\(error.message)); nothing was written, fix that and run the command again")
        case 11, 26: // SQLITE_CORRUPT, SQLITE_NOTADB
            return MusterError(.failure, "\(path) is not a muster ledger or is corrupt (\(error.message))")
        case 8, 23: // SQLITE_READONLY, SQLITE_AUTH
            return MusterError(.failure, "\(path) cannot be written (\(error.message)); check its permissions")
        case 14: // SQLITE_CANTOPEN
            return MusterError(.failure, "cannot open \(path) (\(error.message)); check the folder exists and is writable")
        default:
            return MusterError(.failure, "ledger error on \(path): \(error.message)")
        }
    }

    /// Why a write failed, when the cause can be seen: a full disk or quota, or a
    /// file-size limit. SQLite does not always keep the `errno`, so look at the disk too.
    private static func writeFailureReason(_ error: SQLiteError, path: String) -> String? {
        if let reason = writeFailureReason(errno: error.systemErrno) { return reason }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_FSIZE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max {
            return "the file-size limit (ulimit -f, \(limit.rlim_cur) bytes) was reached or the disk is full"
        }
        var disk = statvfs()
        let folder = (path as NSString).deletingLastPathComponent
        if statvfs(folder.isEmpty ? "." : folder, &disk) == 0, UInt64(disk.f_bavail) * UInt64(disk.f_frsize) < 8 << 20 {
            return "the disk is full"
        }
        return nil
    }

    /// Why a `write` failed with `errno`, when it is one of the "no room" causes.
    static func writeFailureReason(errno code: Int32) -> String? {
        switch code {
        case ENOSPC: return "the disk is full"
        case EDQUOT: return "the disk quota is used up"
        case EFBIG: return "the file-size limit (ulimit -f) was reached"
        default: return nil
        }
    }
}

/// Runs `body` against the ledger at `path`, translating any SQLite failure
/// into the `MusterError` a user can act on. This is the one place where an
/// `SQLiteError` becomes a message and an exit code; code that talks to a
/// ledger wraps its work in it instead of writing its own `catch`.
@inline(__always)
func withStorage<T>(path: String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as SQLiteError {
        throw MusterError.storage(error, path: path)
    }
}
