import Foundation

/// One step of the ledger's schema: from format `version - 1` to format `version`.
///
/// Modelled on GRDB's `DatabaseMigrator`: migrations are named, applied in order, all
/// pending ones in one write transaction (each with its bump of `meta.schema_version`),
/// and never undone. A new ledger is made by running every migration from format 0 (an
/// empty file), so a new ledger and a migrated old one have the same schema.
///
/// Rules for adding one (see CONTRIBUTING.md, "A migration"):
/// - append it to `LedgerMigration.all` with the next version; never edit or reorder a
///   released one (the fixture ledgers in Tests/Fixtures must keep migrating);
/// - keep it to SQL on the one connection it is given: no reading of files, no network;
/// - keep `Ledger.schemaObjects` and `Ledger.metaKeys` (Chain.swift) in step with what
///   it creates, or `verify` reports the new objects as made outside muster;
/// - `Ledger.openExisting` (merge's other ledger) reads older formats without migrating
///   them: a migration that changes `entries`, `personal` or `meta` must teach it.
struct LedgerMigration: Sendable {
    /// The format the ledger is at once this migration has run.
    let version: Int64
    /// What it does, recorded in the `migrations` table.
    let name: String
    /// Runs inside the migration's transaction; throwing rolls the whole step back.
    let apply: @Sendable (SQLiteDatabase) throws -> Void

    /// Every migration, in order: the last one's version is the newest ledger format.
    static let all: [LedgerMigration] = [createLedger, dropOutboxLeftovers, addMailboxKeys, merkleTree, webPending, suppressions, seals]

    /// Format 1, the ledger as muster 0.1.0 made it (Tests/Fixtures/ledger-v1).
    static let createLedger = LedgerMigration(version: 1, name: "create the ledger") { database in
        try database.execute("""
            CREATE TABLE meta (key TEXT PRIMARY KEY, value NOT NULL);
            CREATE TABLE entries (
                seq INTEGER PRIMARY KEY,
                kind TEXT NOT NULL,
                at TEXT NOT NULL,
                fingerprint TEXT,
                body TEXT NOT NULL,
                personal_hash TEXT,
                prev TEXT NOT NULL,
                hash TEXT NOT NULL
            );
            CREATE UNIQUE INDEX entries_one_signature_per_signer ON entries(fingerprint) WHERE kind = 'signature';
            CREATE INDEX entries_by_kind_and_time ON entries(kind, at);
            CREATE INDEX entries_opt_outs ON entries(fingerprint) WHERE kind = 'optout';
            CREATE TABLE personal (
                seq INTEGER PRIMARY KEY,
                salt BLOB NOT NULL,
                data TEXT NOT NULL
            );
            CREATE TABLE outbox (
                template TEXT NOT NULL,
                recipient TEXT NOT NULL,
                signature INTEGER,
                state TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                reply TEXT,
                next_attempt_at TEXT,
                updated_at TEXT NOT NULL,
                PRIMARY KEY (template, recipient)
            ) WITHOUT ROWID;
            CREATE INDEX outbox_in_order ON outbox(template, coalesce(signature, 0), recipient);
            """)
        var key = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for index in key.indices { key[index] = generator.next() }
        let insert = try database.prepare("INSERT INTO meta (key, value) VALUES (?, ?)")
        try insert.run(.text("fingerprint_key"), .blob(key))
        try insert.run(.text("head_seq"), .int(0))
        try insert.run(.text("head_hash"), .text(Ledger.genesis))
        try insert.run(.text("signature_count"), .int(0))
    }

    /// Format 2: the outbox loses its never-used `next_attempt_at` column and the
    /// `(template, state)` index that ledgers made before 2026-11-27 have (every state
    /// change of a blast moved a row within it, and what it served reads the outbox in
    /// order just as well); the applied migrations are recorded from now on.
    static let dropOutboxLeftovers = LedgerMigration(version: 2, name: "drop the outbox's unused column and state index") { database in
        try database.execute("""
            DROP INDEX IF EXISTS outbox_by_state;
            ALTER TABLE outbox DROP COLUMN next_attempt_at;
            CREATE TABLE migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT);
            """)
        // Format 1 was applied before migrations were recorded: when is not known.
        try database.prepare("INSERT INTO migrations (version, name, applied_at) VALUES (1, ?, NULL)").run(.text(createLedger.name))
    }
    /// Format 3: a table for the mailbox key of every signature that counts (one person,
    /// one signature: `ana+1@gmail.com` and `a.na@gmail.com` are `ana@gmail.com`), and the
    /// `withdrawal` entry kind, which needs no schema. The keys are derived data, computed
    /// in Swift from personal data and the workspace's `dedupe:` rules, so the migration
    /// only makes the table: the first command that writes signatures fills it (and
    /// refills it whenever the rules change; `meta.mailbox_rules` records which rules).
    static let addMailboxKeys = LedgerMigration(version: 3, name: "add mailbox keys for duplicates") { database in
        try database.execute("""
            CREATE TABLE mailbox_keys (seq INTEGER PRIMARY KEY, key BLOB NOT NULL);
            CREATE INDEX mailbox_keys_by_key ON mailbox_keys(key);
            """)
    }
}

extension LedgerMigration {

    /// Format 5 (`muster serve`): signatures made on the sign page wait here, outside the
    /// chain and uncounted, until their signer confirms by email; each row is also the
    /// durable queue entry of its confirmation (or "you already signed") mail. Personal
    /// data lives in `data` only; it is erased on confirmation, and the row on expiry.
    /// `mailbox_key` is the signer's mailbox key (as in `mailbox_keys`), for duplicates,
    /// the once-a-day mail limit and `forget`. `client_key` (a keyed hash of the client's
    /// address, never the address) and `domain` (the email's domain) feed the manifest's
    /// `web:` limits; `held` names the limit a held submission went over (`client` or
    /// `domain`): its mail is not sent and it is not counted until `muster review`
    /// approves it. `pending_by_client` and `pending_by_domain` let each new form count
    /// the last hour's forms of its client and domain without reading the whole table.
    static let webPending = LedgerMigration(version: 5, name: "pending web signatures") { database in
        try database.execute("""
            CREATE TABLE pending (
                id INTEGER PRIMARY KEY,
                token_hash TEXT NOT NULL UNIQUE,
                purpose TEXT NOT NULL,
                mailbox_key BLOB NOT NULL,
                created_at TEXT NOT NULL,
                expires_at TEXT NOT NULL,
                data TEXT NOT NULL,
                confirmed_seq INTEGER,
                mail_token TEXT,
                mail_state TEXT NOT NULL,
                mail_attempts INTEGER NOT NULL DEFAULT 0,
                mail_after TEXT,
                mail_reply TEXT,
                client_key BLOB,
                domain TEXT,
                held TEXT
            );
            CREATE INDEX pending_by_key ON pending(mailbox_key, purpose, created_at);
            CREATE INDEX pending_by_expiry ON pending(expires_at);
            CREATE INDEX pending_mail_queue ON pending(mail_state, id);
            CREATE INDEX pending_by_client ON pending(client_key, created_at);
            CREATE INDEX pending_by_domain ON pending(domain, created_at);
            """)
    }
}

extension LedgerMigration {

    /// Format 6 (`muster inbox`, issue 13): what came back from mail. `bounces` is an
    /// append-only log of bounces, complaints and bounce resets per outbox key (the keyed
    /// fingerprint, never an address) — soft bounces are counted from it; `suppressions`
    /// holds every key that may not be mailed again and why; `inbox_processed` records
    /// each mailbox message that changed anything (by a hash of its Message-ID, with its
    /// UIDVALIDITY and UID), so a rerun after a dropped connection counts nothing twice.
    /// `meta.mail_token_key` is the key of the tokens in Message-IDs and VERP addresses.
    static let suppressions = LedgerMigration(version: 6, name: "bounces and suppressions") { database in
        try database.execute("""
            CREATE TABLE bounces (
                id INTEGER PRIMARY KEY,
                recipient TEXT NOT NULL,
                template TEXT,
                kind TEXT NOT NULL,
                status TEXT,
                source TEXT NOT NULL,
                at TEXT NOT NULL
            );
            CREATE INDEX bounces_by_recipient ON bounces(recipient, kind, at);
            CREATE TABLE suppressions (
                recipient TEXT PRIMARY KEY,
                reason TEXT NOT NULL,
                template TEXT,
                status TEXT,
                source TEXT NOT NULL,
                at TEXT NOT NULL
            ) WITHOUT ROWID;
            CREATE TABLE inbox_processed (
                message_hash TEXT PRIMARY KEY,
                uid_validity INTEGER NOT NULL,
                uid INTEGER NOT NULL,
                outcome TEXT NOT NULL,
                at TEXT NOT NULL
            ) WITHOUT ROWID;
            CREATE INDEX inbox_processed_by_uid ON inbox_processed(uid_validity, uid);
            INSERT INTO meta (key, value) VALUES ('mail_token_key', randomblob(32));
            """)
    }
}

extension LedgerMigration {

    /// Format 7: seals on `bounces` and `suppressions` (Inbox/Suppression.swift). Both
    /// tables lie outside the hash chain; from now on only a row muster sealed counts, so
    /// one written beside muster suppresses no one and `verify` reports it. Makes the
    /// seal key (`meta.seal_key`, 32 random bytes, used for nothing else) and seals the
    /// rows already there: a format-6 ledger's rows were written by muster (a row put
    /// beside it before this migration cannot be told apart, and is sealed too).
    static let seals = LedgerMigration(version: 7, name: "seal bounces and suppressions") { database in
        try database.execute("""
            ALTER TABLE bounces ADD COLUMN seal BLOB;
            ALTER TABLE suppressions ADD COLUMN seal BLOB;
            INSERT INTO meta (key, value) VALUES ('seal_key', randomblob(32));
            UPDATE bounces SET seal = \(Ledger.bounceSeal("bounces"));
            UPDATE suppressions SET seal = \(Ledger.suppressionSeal("suppressions"));
            """)
    }
}

/// Brings a ledger's schema to the newest format it knows, all pending migrations at once.
struct LedgerMigrator {
    let migrations: [LedgerMigration]
    /// The ledger file, for messages.
    let path: String
    /// The exit status of a refusal (a ledger from a newer muster, a damaged version
    /// record): 1 for a campaign's own ledger, 65 for one given as input (merge).
    var refusal: ExitStatus = .failure

    init(_ migrations: [LedgerMigration] = LedgerMigration.all, path: String, refusal: ExitStatus = .failure) {
        precondition(migrations.enumerated().allSatisfy { $0.element.version == Int64($0.offset + 1) },
                     "ledger migrations must be numbered 1, 2, 3… in order")
        self.migrations = migrations
        self.path = path
        self.refusal = refusal
    }

    /// The newest format: the last migration's version.
    var latest: Int64 { migrations.last?.version ?? 0 }

    /// The ledger's format: 0 for an empty database (a ledger yet to be made). Reads
    /// only; throws, with nothing written, for a ledger from a newer muster, a damaged
    /// version record, or a database that is not a muster ledger.
    func version(of database: SQLiteDatabase) throws -> Int64 {
        guard try database.scalarInt("SELECT count(*) FROM sqlite_schema") ?? 0 > 0 else { return 0 }
        guard try database.scalarInt("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'meta'") == 1 else {
            throw MusterError(refusal, "\(path) is not a muster ledger (it has no meta table)")
        }
        let statement = try database.prepare("SELECT value, typeof(value) FROM meta WHERE key = 'schema_version'")
        defer { statement.reset() }
        guard try statement.step() else {
            throw MusterError(refusal, "\(path) is not a muster ledger (its meta table has no schema_version record)")
        }
        let stored = statement.text(0) ?? ""
        guard statement.text(1) == "integer", statement.int64(0) >= 1 else {
            throw MusterError(refusal, "\(path) has a damaged schema_version record ('\(stored.prefix(40))'): it is damaged or not a muster ledger; nothing was written")
        }
        let version = statement.int64(0)
        guard version <= latest else {
            throw MusterError(refusal, """
                \(path) has ledger format \(version), newer than this muster (\(MusterKitVersion.string)) reads \
                (format \(latest) at most): upgrade muster to open it; nothing was written
                """)
        }
        return version
    }

    /// Applies every migration after `version` (as `version(of:)` read it) in ONE write
    /// transaction, each step followed by its bump of `meta.schema_version` and its row in
    /// `migrations`; returns the format the ledger is at. All or nothing: a step that
    /// throws rolls back every step of this run, so the ledger stays at the format it had
    /// (SPEC: "Opening an older ledger migrates it forward in one transaction"). Another
    /// process may migrate the same file at the same moment: the format is read again
    /// once the write lock is held, and only what is still missing is applied.
    @discardableResult
    func migrate(_ database: SQLiteDatabase, from version: Int64, at date: Date = Date()) throws -> Int64 {
        guard version < latest else { return version }
        return try database.writeTransaction {
            var current = try self.version(of: database)
            for migration in migrations where migration.version > current {
                try migration.apply(database)
                try database.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)").run(.int(migration.version))
                if try database.scalarInt("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'migrations'") == 1 {
                    try database.prepare("INSERT INTO migrations (version, name, applied_at) VALUES (?, ?, ?)")
                        .run(.int(migration.version), .text(migration.name), .text(Timestamp.format(date)))
                }
                current = migration.version
            }
            return current
        }
    }
}
