import CSQLite
import Foundation

/// An error reported by SQLite, with its result code and message.
public struct SQLiteError: Error, CustomStringConvertible {
    /// The extended SQLite result code.
    public let code: Int32
    /// SQLite's own message for the failure.
    public let message: String
    /// The operating system's `errno` behind an I/O failure (0 when none).
    public var systemErrno: Int32 = 0

    /// The primary result code (`SQLITE_BUSY`, `SQLITE_FULL`, …).
    public var primaryCode: Int32 { code & 0xFF }

    public var description: String { "sqlite error \(code): \(message)" }
}

/// One connection to an SQLite database file, used from a single thread.
///
/// A thin, owned wrapper over SQLite's C API: muster needs exact control over
/// transactions (`BEGIN IMMEDIATE`), durability pragmas and prepared statements.
final class SQLiteDatabase {
    private(set) var handle: OpaquePointer?
    let path: String

    /// Opens (and, when `create` is true, creates) the database at `path`.
    /// Configured once, before the first connection opens.
    private static let configured: Bool = {
        _ = muster_sqlite_disable_memstatus()
        return true
    }()

    init(path: String, readOnly: Bool = false, create: Bool = true) throws {
        _ = Self.configured
        self.path = path
        var flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        if readOnly {
            flags |= SQLITE_OPEN_READONLY
        } else {
            flags |= SQLITE_OPEN_READWRITE
            if create { flags |= SQLITE_OPEN_CREATE }
        }
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close_v2(db)
            throw SQLiteError(code: rc, message: message)
        }
        handle = db
        registerSealFunction() // Inbox/Suppression.swift: muster_seal, for bounces and suppressions
    }

    deinit {
        // Finalized before the connection closes (close_v2 would otherwise wait for them).
        cache.removeAll()
        sqlite3_close_v2(handle)
    }

    /// Statements kept prepared by their SQL (`cached`); a statement taken from here is
    /// reset after each use, so none holds a read open between uses.
    private var cache: [String: SQLiteStatement] = [:]
    /// More distinct statements than this (SQL built with values in it) empties the cache.
    static let cacheLimit = 256

    /// The statement for `sql`, prepared on first use and kept for the connection's life
    /// (re-prepared by SQLite itself after a schema change). For statements that run to
    /// their end (or are reset) before the same SQL is asked again: the caller never
    /// holds one across a call that could use the same text.
    func cached(_ sql: String) throws -> SQLiteStatement {
        if let statement = cache[sql] {
            statement.reset() // should an earlier use have thrown before its own reset
            return statement
        }
        let statement = try prepare(sql)
        if cache.count >= Self.cacheLimit { cache.removeAll() }
        cache[sql] = statement
        return statement
    }

    /// Waits up to `milliseconds` for another process's lock before reporting busy.
    func setBusyTimeout(milliseconds: Int32) {
        sqlite3_busy_timeout(handle, milliseconds)
    }

    /// Runs one or more statements that return no rows.
    func execute(_ sql: String) throws {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        if rc != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(errorMessage)
            throw SQLiteError(code: sqlite3_extended_errcode(handle), message: message, systemErrno: sqlite3_system_errno(handle))
        }
    }

    /// Whether a statement of this connection has been stepped and not reset (it then
    /// holds a read open): never between two uses of the ledger.
    var hasStatementInProgress: Bool {
        var statement = sqlite3_next_stmt(handle, nil)
        while let current = statement {
            if sqlite3_stmt_busy(current) != 0 { return true }
            statement = sqlite3_next_stmt(handle, current)
        }
        return false
    }

    /// Runs one statement (one only: SQLite prepares the first of a list) that returns no
    /// rows, kept prepared (`cached`): for the transaction and savepoint statements every
    /// write runs.
    func executeCached(_ sql: String) throws {
        let statement = try cached(sql)
        defer { statement.reset() }
        while try statement.step() {}
    }

    /// Prepares a statement for binding and stepping.
    func prepare(_ sql: String) throws -> SQLiteStatement {
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard rc == SQLITE_OK, let statement else {
            throw lastError(rc)
        }
        return SQLiteStatement(statement, database: self)
    }

    /// The first column of the first row of `sql`, as an integer (nil when no row).
    func scalarInt(_ sql: String, _ arguments: SQLiteValue...) throws -> Int64? {
        let statement = try cached(sql)
        defer { statement.reset() }
        try statement.bind(arguments)
        guard try statement.step() else { return nil }
        return statement.isNull(0) ? nil : statement.int64(0)
    }

    /// The first column of the first row of `sql`, as text (nil when no row or NULL).
    func scalarText(_ sql: String, _ arguments: SQLiteValue...) throws -> String? {
        let statement = try cached(sql)
        defer { statement.reset() }
        try statement.bind(arguments)
        guard try statement.step() else { return nil }
        return statement.text(0)
    }

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT`, rolling back when it throws.
    ///
    /// IMMEDIATE takes the write lock up front, so two processes never both read
    /// "not a duplicate" and then race to write.
    func writeTransaction<T>(_ body: () throws -> T) throws -> T {
        try executeCached("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try executeCached("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Runs `body` inside a deferred (read) transaction, for a consistent snapshot.
    func readTransaction<T>(_ body: () throws -> T) throws -> T {
        try executeCached("BEGIN DEFERRED")
        defer { try? executeCached("COMMIT") }
        return try body()
    }

    func lastError(_ rc: Int32) -> SQLiteError {
        SQLiteError(code: sqlite3_extended_errcode(handle) != 0 ? sqlite3_extended_errcode(handle) : rc,
                    message: String(cString: sqlite3_errmsg(handle)),
                    systemErrno: sqlite3_system_errno(handle))
    }
}

/// A value bound to a statement parameter.
enum SQLiteValue {
    case null
    case int(Int64)
    case text(String)
    case blob([UInt8])
}

/// A prepared statement; step it, read columns, reset and rebind for reuse.
final class SQLiteStatement {
    private let statement: OpaquePointer
    private unowned let database: SQLiteDatabase

    fileprivate init(_ statement: OpaquePointer, database: SQLiteDatabase) {
        self.statement = statement
        self.database = database
    }

    deinit {
        sqlite3_finalize(statement)
    }

    /// Clears bindings and rewinds so the statement can run again.
    func reset() {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
    }

    /// Binds values to parameters 1…n, in order.
    func bind(_ values: [SQLiteValue]) throws {
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let rc: Int32
            switch value {
            case .null:
                rc = sqlite3_bind_null(statement, index)
            case .int(let number):
                rc = sqlite3_bind_int64(statement, index, number)
            case .text(let string):
                rc = sqlite3_bind_text(statement, index, string, -1, muster_sqlite_transient())
            case .blob(let bytes):
                rc = bytes.withUnsafeBytes { buffer in
                    sqlite3_bind_blob(statement, index, buffer.baseAddress, Int32(buffer.count), muster_sqlite_transient())
                }
            }
            guard rc == SQLITE_OK else { throw database.lastError(rc) }
        }
    }

    /// Binds one text parameter (copied by SQLite), without boxing it in a `SQLiteValue`.
    func bindText(_ index: Int32, _ text: String?) throws {
        let rc: Int32
        if let text {
            var copy = text
            rc = copy.withUTF8 { bytes in
                guard let base = bytes.baseAddress, bytes.count > 0 else {
                    return sqlite3_bind_text(statement, index, "", 0, muster_sqlite_transient())
                }
                return sqlite3_bind_text(statement, index, UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self),
                                         Int32(bytes.count), muster_sqlite_transient())
            }
        } else {
            rc = sqlite3_bind_null(statement, index)
        }
        guard rc == SQLITE_OK else { throw database.lastError(rc) }
    }

    /// Binds one blob parameter (copied by SQLite).
    func bindBlob(_ index: Int32, _ bytes: [UInt8]) throws {
        let rc = bytes.withUnsafeBytes { buffer in
            // A nil pointer would bind NULL: an empty blob is bound as a zero-length one.
            buffer.baseAddress == nil ? sqlite3_bind_zeroblob(statement, index, 0)
                : sqlite3_bind_blob(statement, index, buffer.baseAddress, Int32(buffer.count), muster_sqlite_transient())
        }
        guard rc == SQLITE_OK else { throw database.lastError(rc) }
    }

    /// Binds text the caller keeps alive, unchanged, until the statement has run and been
    /// reset and the parameter is bound again or cleared (SQLite does not copy it).
    func bindText(_ index: Int32, borrowing bytes: UnsafeRawBufferPointer) throws {
        let rc = bytes.count == 0 ? sqlite3_bind_text(statement, index, "", 0, muster_sqlite_transient())
            : sqlite3_bind_text(statement, index, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(bytes.count), nil)
        guard rc == SQLITE_OK else { throw database.lastError(rc) }
    }

    /// Binds a blob the caller keeps alive, as `bindText(_:borrowing:)`.
    func bindBlob(_ index: Int32, borrowing bytes: UnsafeRawBufferPointer) throws {
        let rc = bytes.count == 0 ? sqlite3_bind_zeroblob(statement, index, 0)
            : sqlite3_bind_blob(statement, index, bytes.baseAddress!, Int32(bytes.count), nil)
        guard rc == SQLITE_OK else { throw database.lastError(rc) }
    }

    /// Unbinds every parameter (to NULL), so none points at memory the caller will free.
    func clearBindings() {
        sqlite3_clear_bindings(statement)
    }

    /// Binds one integer parameter.
    func bindInt(_ index: Int32, _ value: Int64) throws {
        let rc = sqlite3_bind_int64(statement, index, value)
        guard rc == SQLITE_OK else { throw database.lastError(rc) }
    }

    /// Runs a statement bound with `bindText`/`bindInt` and clears it for the next use.
    func runBound() throws {
        defer { sqlite3_reset(statement) }
        while try step() {}
    }

    /// `runBound`, answering false instead of throwing when the statement fails with the
    /// extended result code `expected` (such as a unique-index conflict), so that an
    /// expected refusal costs no error value.
    func runBound(refusedWith expected: Int32) throws -> Bool {
        defer { sqlite3_reset(statement) }
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_ROW { continue }
            if rc == SQLITE_DONE { return true }
            if rc == expected || sqlite3_extended_errcode(database.handle) == expected { return false }
            throw database.lastError(rc)
        }
    }

    /// Binds and runs a statement that returns no rows.
    func run(_ values: SQLiteValue...) throws {
        reset()
        try bind(values)
        while try step() {}
    }

    /// `run`, then resets (for a statement kept prepared with `SQLiteDatabase.cached`).
    func runAndReset(_ values: SQLiteValue...) throws {
        reset()
        defer { reset() }
        try bind(values)
        while try step() {}
    }

    /// Advances to the next row; false when done.
    @discardableResult
    func step() throws -> Bool {
        let rc = sqlite3_step(statement)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw database.lastError(rc)
        }
    }

    /// How many columns the statement's rows have.
    var columnCount: Int { Int(sqlite3_column_count(statement)) }

    func isNull(_ column: Int32) -> Bool {
        sqlite3_column_type(statement, column) == SQLITE_NULL
    }

    func int64(_ column: Int32) -> Int64 {
        sqlite3_column_int64(statement, column)
    }

    func text(_ column: Int32) -> String? {
        guard let pointer = sqlite3_column_text(statement, column) else { return nil }
        let count = Int(sqlite3_column_bytes(statement, column))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    /// Calls `body` with the column's raw bytes (text or blob), without copying.
    func withBytes<T>(_ column: Int32, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        let pointer = sqlite3_column_blob(statement, column)
        let count = Int(sqlite3_column_bytes(statement, column))
        return try body(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    /// The column's raw bytes, valid until the next step or reset (nil base for NULL).
    func rawBytes(_ column: Int32) -> UnsafeRawBufferPointer {
        let pointer = sqlite3_column_blob(statement, column)
        return UnsafeRawBufferPointer(start: pointer, count: Int(sqlite3_column_bytes(statement, column)))
    }

    func blob(_ column: Int32) -> [UInt8] {
        withBytes(column) { Array($0) }
    }
}
