#!/usr/bin/env python3
"""An independent verifier for muster ledgers, written from docs/ledger-format.md.

    verify_ledger.py LEDGER.sqlite [--json]

It shares no code with muster: Python's standard library only (sqlite3, hashlib, json).
It reads ledger formats 1 to 7 as they are (it never migrates one: muster does that
when it opens an older ledger). It opens the ledger read-only and checks what `muster
verify` checks — every entry's hash and link, every personal-data hash, every redaction
and withdrawal, the head and count recorded in `meta`, and that nothing lies beside the
chain (mailbox keys included) — and prints the same summary:

    ok: 243 signatures (1 forgotten, 2 withdrawn), 247 entries
    head 59f27712…

or `FAILED: entry N: reason`. With --json it prints one object with the keys of
`muster verify --json` (ok, count, entries, redacted, withdrawn, head, problems,
first_bad). The count leaves withdrawn signatures out.
Exit status: 0 when the ledger verifies, 1 when it does not, 2 when it cannot be read.
"""
import hashlib
import hmac
import json
import sqlite3
import sys

GENESIS = "0" * 64
PREFIX = b"muster-ledger-v1\x00"

# The database objects (type, name) a ledger of each format may hold, and the meta
# records (the same in every format). Entries, personal data and meta are read the same
# way in every format so far; only the other objects differ. A ledger is read as it is:
# this verifier never migrates one.
COMMON_OBJECTS = {
    ("table", "meta"), ("table", "entries"), ("table", "personal"), ("table", "outbox"),
    ("index", "sqlite_autoindex_meta_1"),
    ("index", "entries_one_signature_per_signer"), ("index", "entries_by_kind_and_time"),
    ("index", "entries_opt_outs"), ("index", "outbox_in_order"),
    ("table", "sqlite_stat1"), ("table", "sqlite_stat4"),
}
SCHEMA_OBJECTS = {
    # Format 1: ledgers made before 2026-11-27 may also hold the index outbox_by_state.
    1: COMMON_OBJECTS | {("index", "outbox_by_state")},
    # Format 2 (migration 2): outbox_by_state dropped, the migrations table added.
    2: COMMON_OBJECTS | {("table", "migrations")},
    # Format 3 (migration 3): the mailbox keys, derived data beside the chain.
    3: COMMON_OBJECTS | {("table", "migrations"), ("table", "mailbox_keys"), ("index", "mailbox_keys_by_key")},
    # Format 4 (migration 4): the Merkle tree over the entries (docs/transparency.md),
    # checked here node by node against the entries.
    4: COMMON_OBJECTS | {("table", "migrations"), ("table", "mailbox_keys"), ("index", "mailbox_keys_by_key"),
                         ("table", "merkle_nodes")},
    # Format 5 (migration 5): the sign page's pending signatures, outside the chain and
    # uncounted (the chain and its checks are unchanged).
    5: COMMON_OBJECTS | {("table", "migrations"), ("table", "mailbox_keys"), ("index", "mailbox_keys_by_key"),
                         ("table", "merkle_nodes"),
                         ("table", "pending"), ("index", "sqlite_autoindex_pending_1"), ("index", "pending_by_key"),
                         ("index", "pending_by_expiry"), ("index", "pending_mail_queue"),
                         ("index", "pending_by_client"), ("index", "pending_by_domain")},
}
# Format 6 (migration 6): bounces, suppressions and processed mailbox messages, beside
# the chain (docs/mail.md, "Bounces and suppression"); meta gains mail_token_key.
SCHEMA_OBJECTS[6] = SCHEMA_OBJECTS[5] | {("table", "bounces"), ("index", "bounces_by_recipient"), ("table", "suppressions"),
                                         ("table", "inbox_processed"), ("index", "inbox_processed_by_uid")}
# Format 7 (migration 7): a seal on every row of bounces and suppressions, keyed with
# meta.seal_key (the objects are those of format 6; the tables gain a column).
SCHEMA_OBJECTS[7] = SCHEMA_OBJECTS[6]
MERKLE_FORMAT = 4
SEAL_FORMAT = 7
META_KEYS = {"fingerprint_key", "head_seq", "head_hash", "signature_count", "schema_version", "mailbox_rules", "mail_token_key",
             "seal_key"}
SEAL_PREFIX = b"muster-seal-v1\x00"
SEALED_FIELDS = {
    "suppressions": ("recipient", "reason", "template", "status", "source", "at"),
    "bounces": ("id", "recipient", "template", "kind", "status", "source", "at"),
}
KINDS = {b"signature", b"redaction", b"optout", b"withdrawal"}


def raw(value):
    """A column's bytes as SQLite gives them (CAST(… AS BLOB)); NULL is no bytes."""
    return b"" if value is None else bytes(value)


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest().encode("ascii")


def entry_hash(seq, kind, at, fingerprint, body, personal_hash, prev):
    """The entry hash of docs/ledger-format.md, over the columns' stored bytes."""
    data = PREFIX + str(seq).encode("ascii")
    for field in (kind, at, fingerprint, body, personal_hash, prev):
        data += b"\x00" + field
    return sha256_hex(data)


def leaf_hash(seq, kind, at, fingerprint, body, personal_hash, prev):
    """The entry's Merkle leaf hash (docs/transparency.md): SHA-256 of 0x00 and the
    bytes its entry hash covers."""
    data = b"\x00" + PREFIX + str(seq).encode("ascii")
    for field in (kind, at, fingerprint, body, personal_hash, prev):
        data += b"\x00" + field
    return hashlib.sha256(data).digest()


def merkle_nodes(leaves):
    """The complete subtrees of 16 leaves or more of the RFC 9162 tree over `leaves`, as
    (position, hash) in the order they complete: the rows of the table merkle_nodes."""
    stack, nodes = [], []
    for leaf in leaves:
        size, h = 1, leaf
        while stack and stack[-1][0] == size:
            h = hashlib.sha256(b"\x01" + stack.pop()[1] + h).digest()
            size *= 2
            if size >= 16:
                nodes.append((len(nodes) + 1, h))
        stack.append((size, h))
    return nodes


def integer_member(body, name):
    """The JSON integer member `name` of an entry's body, or None."""
    try:
        value = json.loads(body.decode("utf-8")).get(name)
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def redaction_target(body):
    """The entry a redaction names: its body's "redacts" member, a JSON integer."""
    return integer_member(body, "redacts")


def row_seal(key, table, values):
    """The seal of docs/ledger-format.md ("Seals"): HMAC-SHA256 over the table's name and
    the row's fields, each as a type byte, an 8-byte big-endian length and its bytes.
    None when a field is neither text, integer nor NULL (muster writes no other)."""
    data = bytearray(SEAL_PREFIX)
    for value in (table,) + tuple(values):
        if value is None:
            data += b"n" + (0).to_bytes(8, "big")
        elif isinstance(value, int) and not isinstance(value, bool):
            digits = str(value).encode("ascii")
            data += b"i" + len(digits).to_bytes(8, "big") + digits
        elif isinstance(value, str):
            text = value.encode("utf-8", "surrogatepass")
            data += b"t" + len(text).to_bytes(8, "big") + text
        else:
            return None
    return hmac.new(key, bytes(data), hashlib.sha256).digest()


def meta_value(db, key):
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    if row is None:
        raise LedgerUnreadable(f"the ledger lacks its '{key}' record; it is damaged or not a muster ledger")
    return row[0]


class LedgerUnreadable(Exception):
    pass


def verify(path):
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        version = meta_value(db, "schema_version")
    except sqlite3.Error as error:
        raise LedgerUnreadable(f"{path}: {error}")
    if not isinstance(version, int) or isinstance(version, bool) or version not in SCHEMA_OBJECTS:
        formats = ", ".join(map(str, sorted(SCHEMA_OBJECTS)))
        raise LedgerUnreadable(f"{path} has ledger format {version!r}; this verifier reads formats {formats}")
    schema_objects = SCHEMA_OBJECTS[version]
    head_seq = meta_value(db, "head_seq")
    head_hash = meta_value(db, "head_hash")
    signature_count = meta_value(db, "signature_count")
    if not isinstance(head_seq, int):
        raise LedgerUnreadable("the ledger's head_seq record is not a number")

    problems = []  # (entry or None, reason)

    def problem(entry, reason):
        problems.append((entry, reason))

    # 1. The chain: entries 1…head, in order.
    personal = {}
    for seq, salt, data in db.execute(
            "SELECT seq, CAST(salt AS BLOB), CAST(data AS BLOB) FROM personal WHERE typeof(seq) = 'integer'"):
        personal[seq] = (raw(salt), raw(data))
    kinds = {}
    without_personal = set()
    redactions = []
    withdrawals = []  # (seq, withdrawn entry, the entry it duplicates)
    signatures = entries = 0
    expected = 1
    previous = GENESIS.encode("ascii")
    last_seq = 0
    rows = db.execute("""
        SELECT seq, CAST(kind AS BLOB), CAST(at AS BLOB), CAST(fingerprint AS BLOB), CAST(body AS BLOB),
               CAST(personal_hash AS BLOB), CAST(prev AS BLOB), CAST(hash AS BLOB)
        FROM entries WHERE seq BETWEEN 1 AND ? ORDER BY seq""", (head_seq,))
    leaves = []
    for seq, kind, at, fingerprint, body, personal_hash, prev, stored in rows:
        kind, at, fingerprint, body = raw(kind), raw(at), raw(fingerprint), raw(body)
        personal_hash, prev, stored = raw(personal_hash), raw(prev), raw(stored)
        entries += 1
        leaves.append(leaf_hash(seq, kind, at, fingerprint, body, personal_hash, prev))
        if seq != expected:
            if seq == expected + 1:
                problem(expected, f"entry {expected} is missing (deleted?); entry {seq} follows entry {expected - 1}")
            else:
                problem(expected, f"entries {expected}–{seq - 1} are missing (deleted?); entry {seq} follows entry {expected - 1}")
        if prev != previous:
            problem(seq, f"entry {seq} does not follow entry {seq - 1}: its previous-hash does not match")
        if entry_hash(seq, kind, at, fingerprint, body, personal_hash, prev) != stored:
            problem(seq, f"entry {seq} was altered: its contents no longer match its hash")
        kinds[seq] = kind
        if kind == b"signature":
            signatures += 1
            if seq in personal:
                salt, data = personal[seq]
                if sha256_hex(salt + data) != personal_hash:
                    problem(seq, f"the personal data of entry {seq} was altered: it no longer matches the hash the entry recorded")
            else:
                without_personal.add(seq)
        elif kind == b"redaction":
            target = redaction_target(body)
            if target is None:
                problem(seq, f"entry {seq} is a redaction without a valid target")
            else:
                redactions.append((seq, target))
        elif kind == b"withdrawal":
            target, original = integer_member(body, "withdraws"), integer_member(body, "duplicate_of")
            if target is None or original is None:
                problem(seq, f"entry {seq} is a withdrawal without a valid target")
            else:
                withdrawals.append((seq, target, original))
        elif kind not in KINDS:
            problem(seq, f"entry {seq} has an unknown kind {kind!r}")
        previous = stored
        expected = seq + 1
        last_seq = seq
    last_hash = previous.decode("ascii", "replace")

    # 2. Redactions and erased personal data.
    redacted = set()
    for seq, target in redactions:
        if target <= 0 or target >= seq or kinds.get(target) != b"signature":
            problem(seq, f"entry {seq} redacts entry {target}, which is not an earlier signature")
        elif target not in without_personal:
            problem(seq, f"entry {seq} redacts entry {target}, but that signature's personal data is present again")
        redacted.add(target)
    for seq in sorted(without_personal - redacted):
        problem(seq, f"the personal data of entry {seq} is gone, but no redaction entry records its erasure")

    # 2b. Withdrawals: each takes one earlier signature out of the count, once, as a
    # duplicate of another earlier signature.
    withdrawn = {}
    for seq, target, original in withdrawals:
        if target <= 0 or target >= seq or kinds.get(target) != b"signature":
            problem(seq, f"entry {seq} withdraws entry {target}, which is not an earlier signature")
        elif target in withdrawn:
            problem(seq, f"entry {seq} withdraws entry {target}, which entry {withdrawn[target]} already withdrew")
        elif original <= 0 or original >= seq or original == target or kinds.get(original) != b"signature":
            problem(seq, f"entry {seq} withdraws entry {target} as a duplicate of entry {original}, "
                         "which is not another earlier signature")
        else:
            withdrawn[target] = seq

    # 3. The head and count the ledger recorded.
    if head_seq != last_seq or head_hash != last_hash:
        if head_seq > last_seq:
            problem(last_seq + 1, f"the ledger ends at entry {last_seq}, but it recorded entry {head_seq} as its newest")
        else:
            problem(max(last_seq, 1), f"the ledger's record of its newest entry ({head_seq}) does not match its last entry ({last_seq})")
    elif signature_count != signatures:
        problem(max(last_seq, 1), f"the ledger recorded {signature_count} signatures but holds {signatures}")

    # The Merkle tree (format 4): every complete subtree stored as the entries make it.
    if db.execute("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'merkle_nodes'").fetchone()[0]:
        expected_nodes = merkle_nodes(leaves)
        stored_nodes = db.execute("SELECT pos, CAST(hash AS BLOB) FROM merkle_nodes ORDER BY pos").fetchall()
        if [(p, raw(h)) for p, h in stored_nodes] != expected_nodes:
            problem(None, "the Merkle tree does not match the entries: a node was altered, removed or added outside muster")
    elif version >= MERKLE_FORMAT:
        problem(None, "the ledger's Merkle tree (the table merkle_nodes) is missing")

    # 4. Nothing beside the chain.
    for kind, name in db.execute("SELECT type, name FROM sqlite_schema"):
        if (kind, name) not in schema_objects:
            problem(None, f"the ledger holds a {kind} '{name}' that muster did not create")
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    for table in ("entries", "personal") + (("mailbox_keys",) if "mailbox_keys" in tables else ()):
        columns = db.execute(f"PRAGMA table_info({table})").fetchall()
        keys = [c for c in columns if c[5] > 0]
        seq = [c for c in columns if c[1] == "seq"]
        if not (len(keys) == 1 and seq and seq[0][5] == 1 and seq[0][2].upper() == "INTEGER"):
            problem(None, f"the table '{table}' was redefined: its seq is no longer the row's integer key")
            stray = db.execute(f"SELECT count(*) FROM {table} WHERE typeof(seq) <> 'integer'").fetchone()[0]
            if stray:
                problem(None, f"{stray} rows of '{table}' have no entry number")
    for (seq,) in db.execute("SELECT seq FROM entries WHERE typeof(seq) = 'integer' AND (seq < 1 OR seq > ?)", (head_seq,)):
        problem(seq, f"entry {seq} is outside the hash chain: a row was added beside the chain")
    for seq in sorted(personal):
        if not (1 <= seq <= head_seq and kinds.get(seq) == b"signature"):
            problem(seq, f"personal data is stored for entry {seq}, which is not a signature in the hash chain")
    chained_signature = {}
    for seq, fingerprint in db.execute(
            "SELECT seq, fingerprint FROM entries WHERE kind = 'signature' AND seq BETWEEN 1 AND ?", (head_seq,)):
        chained_signature[seq] = fingerprint
    for template, recipient, signature in db.execute("SELECT template, recipient, signature FROM outbox"):
        if signature is None:
            if not (isinstance(recipient, str) and len(recipient) == 64 and all(c in "0123456789abcdef" for c in recipient)):
                problem(None, f"the outbox of template '{template}' has a row for a recipient key that muster cannot have written")
        elif not isinstance(signature, int):
            problem(None, f"the outbox of template '{template}' has a row whose signature is not an entry number")
        elif chained_signature.get(signature) != recipient or recipient is None:
            problem(signature, f"the outbox of template '{template}' has a row for entry {signature}, which is not that signer's signature in the hash chain")
    if "mailbox_keys" in tables:
        # Mailbox keys: derived data, a row (16 bytes) only for a chained signature that
        # counts and whose key is not its fingerprint's start. Whether a signature should
        # have a row depends on the workspace's rules, which the ledger does not hold: a
        # row that went missing is not something a reader of the ledger alone can tell.
        for seq, key in db.execute("SELECT seq, key FROM mailbox_keys WHERE typeof(seq) = 'integer'"):
            if not (1 <= seq <= head_seq and kinds.get(seq) == b"signature" and seq in personal
                    and seq not in redacted and seq not in withdrawn):
                problem(seq, f"a mailbox key is stored for entry {seq}, which is not a signature that counts")
            elif not (isinstance(key, bytes) and len(key) == 16):
                problem(seq, f"the mailbox key of entry {seq} is not 16 bytes")
    for (key,) in db.execute("SELECT key FROM meta"):
        if key not in META_KEYS:
            problem(None, f"the ledger's meta table holds a record '{key}' that muster did not write")

    unsealed = None
    if version >= SEAL_FORMAT:
        # Bounces and suppressions lie beside the chain: only rows muster sealed count.
        row = db.execute("SELECT value FROM meta WHERE key = 'seal_key'").fetchone()
        seal_key = row[0] if row and isinstance(row[0], bytes) and len(row[0]) == 32 else None
        if seal_key is None:
            problem(None, "the ledger has no seal key (meta.seal_key, 32 bytes) or a damaged one")
        unsealed = {}
        for table, fields in SEALED_FIELDS.items():
            count = 0
            for row in db.execute(f"SELECT {', '.join(fields)}, seal FROM {table}"):
                seal = row_seal(seal_key, table, row[:-1]) if seal_key else None
                if seal is None or not isinstance(row[-1], bytes) or not hmac.compare_digest(seal, row[-1]):
                    count += 1
            unsealed[table] = count
            if count:
                problem(None, f"{count} row(s) of {table} were not written by muster: their seal is missing or wrong")

    first = min(problems, key=lambda p: float("inf") if p[0] is None else p[0]) if problems else None
    report = {
        "ok": not problems, "count": signatures - len(withdrawn), "entries": entries, "redacted": len(redacted),
        "withdrawn": len(withdrawn),
        "head": last_hash, "problems": len(problems),
    }
    if unsealed is not None:
        report["unsealed"] = unsealed
    if first is not None:
        report["first_bad"] = {"reason": first[1]} if first[0] is None else {"entry": first[0], "reason": first[1]}
    return report


def main():
    args = [a for a in sys.argv[1:] if a != "--json"]
    if len(args) != 1:
        sys.exit(__doc__.split("\n\n")[1])
    try:
        report = verify(args[0])
    except LedgerUnreadable as error:
        print(f"verify_ledger: {error}", file=sys.stderr)
        sys.exit(2)
    if "--json" in sys.argv[1:]:
        print(json.dumps(report, sort_keys=True))
    elif report["ok"]:
        notes = [f"{report['redacted']} forgotten"] if report["redacted"] else []
        notes += [f"{report['withdrawn']} withdrawn"] if report["withdrawn"] else []
        aside = f" ({', '.join(notes)})" if notes else ""
        print(f"ok: {report['count']} signatures{aside}, {report['entries']} entries")
        print(f"head {report['head']}")
    else:
        bad = report["first_bad"]
        where = f"entry {bad['entry']}: " if "entry" in bad else ""
        print(f"FAILED: {where}{bad['reason']}")
        if report["problems"] > 1:
            print(f"{report['problems'] - 1} more problem(s) after it")
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
