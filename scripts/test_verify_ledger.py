#!/usr/bin/env python3
"""Proves docs/ledger-format.md: scripts/verify_ledger.py, written from that page alone,
agrees with `muster verify` on real ledgers and on tampered copies.

    test_verify_ledger.py MUSTER

Makes a ledger with the real binary in a temporary workspace (the example campaign's
sign-up sheet imported, signatures with comments and personal fields, a `forget`, an
`unsubscribe`, a signature that `dedupe --withdraw` withdraws), then, on copies of it, edits a body, deletes a row, adds a row beside
the chain, and so on. For each ledger it runs both verifiers and requires that they
agree — ok or not, the first bad entry, count, entries, forgotten and head — and that
each verdict is the expected one, so a verifier that always says "ok" (or always
"FAILED") fails here. Then the committed format-1 fixture (Tests/Fixtures/ledger-v1), as
it is and tampered: verify_ledger.py reads it at format 1, `muster verify` migrates it
(and says so on stderr), and verify_ledger.py reads it again at the newest format; all
three agree. Run by Tests/MusterCLITests/DocsTests.swift (`make test`).
"""
import json
import os
import pathlib
import shutil
import sqlite3
import subprocess
import sys
import tempfile

EDIT_BODY = """UPDATE entries SET body = replace(body, '"source":"sign-up sheet"', '"source":"paper"') WHERE seq = 5"""
ROOT = pathlib.Path(__file__).resolve().parent.parent
VERIFIER = ROOT / "scripts" / "verify_ledger.py"
SLUG = "fair-rates-translators"


def run(args, cwd, env=None, check=True):
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, NO_COLOR="1", **(env or {})))
    if check and proc.returncode != 0:
        sys.exit(f"test_verify_ledger: {' '.join(map(str, args))} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def make_ledger(muster, folder):
    """A real ledger: the example sheet imported, three signed, one forgotten, one unsubscribed,
    and one person who signed twice (while `dedupe: keep_tags: true` let a tag through),
    the second signature withdrawn."""
    ws = folder / "ws"
    run([muster, "init", str(ws)], folder)
    shutil.copytree(ROOT / "campaigns" / SLUG, ws / "campaigns" / SLUG)
    run([muster, "import", f"campaigns/{SLUG}/signatures.csv", "--source", "sign-up sheet", "--by", "Sam"], ws,
        env={"MUSTER_NOW": "2026-11-27T10:00:00Z"})
    now = {"MUSTER_NOW": "2026-11-28T09:00:00Z"}
    run([muster, "sign", "--name", "Zoé Ça", "--email", "Zoé@Bücher.example", "--field", "region=Lyon",
         "--field", "languages=DE>FR", "--consent", "updates", "--consent", "organising",
         "--comment", "Two paragraphs.\n\nThe second one \"quoted\" \\ with a backslash.", "--by", "Inès"], ws, env=now)
    run([muster, "sign", "--name", "Bo Chen", "--email", "bo@example.org", "--field", "region=Paris",
         "--field", "profession=interpreter"], ws, env=now)
    run([muster, "sign", "--name", "Carla Dias", "--email", "carla@example.org", "--field", "region=Nantes"], ws, env=now)
    # Before the forget: a copy whose personal row can be restored later.
    ledger = ws / "campaigns" / SLUG / "ledger.sqlite"
    before_forget = folder / "before-forget.sqlite"
    copy_ledger(ledger, before_forget)
    run([muster, "forget", "bo@example.org"], ws, env={"MUSTER_NOW": "2026-11-28T10:00:00Z"})
    run([muster, "unsubscribe", "dana@example.org"], ws, env={"MUSTER_NOW": "2026-11-28T10:05:00Z"})
    settings = (ws / "muster.yaml").read_text(encoding="utf-8")
    (ws / "muster.yaml").write_text(settings + "\ndedupe:\n  keep_tags: true\n", encoding="utf-8")
    run([muster, "sign", "--name", "Carla Dias", "--email", "carla+news@example.org", "--field", "region=Nantes"], ws,
        env={"MUSTER_NOW": "2026-11-28T10:10:00Z"})
    (ws / "muster.yaml").write_text(settings, encoding="utf-8")
    run([muster, "dedupe", "--withdraw"], ws, env={"MUSTER_NOW": "2026-11-28T10:15:00Z"})
    # A sealed row in `bounces` (format 7): a bounce reset, which needs no mailbox.
    run([muster, "unsubscribe", "carla@example.org", "--reset-bounces"], ws, env={"MUSTER_NOW": "2026-11-28T10:20:00Z"})
    return ws, ledger, before_forget


def copy_ledger(source, target):
    """A consistent copy through SQLite's backup API (the -wal folded in)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    src.backup(dst)
    dst.execute("PRAGMA journal_mode=DELETE")
    src.close()
    dst.close()


def tamper(path, sql, params=()):
    db = sqlite3.connect(path)
    if params:
        db.execute(sql, params)
    else:
        db.executescript(sql)
    db.commit()
    db.close()


def verdicts(muster, ws, ledger):
    """(muster verify --json, verify_ledger.py --json) for `ledger` put in the campaign."""
    target = ws / "campaigns" / SLUG / "ledger.sqlite"
    if ledger != target:
        for suffix in ("", "-wal", "-shm"):
            pathlib.Path(str(target) + suffix).unlink(missing_ok=True)
        shutil.copyfile(ledger, target)
    ours = run([muster, "verify", "--json"], ws, check=False)
    theirs = run([sys.executable, str(VERIFIER), str(target), "--json"], ws, check=False)
    for name, proc in (("muster verify", ours), ("verify_ledger.py", theirs)):
        if proc.returncode not in (0, 1):
            sys.exit(f"test_verify_ledger: {name} exited {proc.returncode}: {proc.stderr.strip()}")
    a, b = json.loads(ours.stdout), json.loads(theirs.stdout)
    if (ours.returncode == 0) != a["ok"] or (theirs.returncode == 0) != b["ok"]:
        sys.exit(f"test_verify_ledger: exit status and 'ok' disagree: {ours.returncode} {a}; {theirs.returncode} {b}")
    return a, b


def summary(report):
    bad = report.get("first_bad") or {}
    return {"ok": report["ok"], "count": report["count"], "entries": report["entries"],
            "redacted": report["redacted"], "withdrawn": report.get("withdrawn"), "head": report["head"],
            "first_bad_entry": bad.get("entry")}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    muster = str(pathlib.Path(sys.argv[1]).resolve())
    failures = []
    with tempfile.TemporaryDirectory(prefix="muster-verify-ledger-") as tmp:
        folder = pathlib.Path(tmp)
        ws, ledger, before_forget = make_ledger(muster, folder)
        pristine = folder / "pristine.sqlite"
        copy_ledger(ledger, pristine)
        db = sqlite3.connect(pristine)
        head = db.execute("SELECT value FROM meta WHERE key = 'head_seq'").fetchone()[0]
        forgotten = db.execute("SELECT seq FROM entries WHERE kind = 'signature' AND seq NOT IN (SELECT seq FROM personal)").fetchone()[0]
        withdrawal, withdrawn = db.execute(
            "SELECT seq, json_extract(body, '$.withdraws') FROM entries WHERE kind = 'withdrawal'").fetchone()
        optout = db.execute("SELECT seq FROM entries WHERE kind = 'optout'").fetchone()[0]
        db.close()

        def restore_personal(path):
            old = sqlite3.connect(before_forget)
            salt, data = old.execute("SELECT salt, data FROM personal WHERE seq = ?", (forgotten,)).fetchone()
            old.close()
            tamper(path, "INSERT INTO personal (seq, salt, data) VALUES (?, ?, ?)", (forgotten, salt, data))

        def sealed_suppression(path):
            # Sealed as docs/ledger-format.md says, with the ledger's own key: both verifiers
            # must accept it (the seal proves the scheme and the key, nothing more).
            sys.path.insert(0, str(VERIFIER.parent))
            import verify_ledger
            db = sqlite3.connect(path)
            key = db.execute("SELECT value FROM meta WHERE key = 'seal_key'").fetchone()[0]
            row = ("ab" * 32, "complaint", None, None, "inbox", "2026-11-28T11:00:00.000Z")
            db.execute("INSERT INTO suppressions (recipient, reason, template, status, source, at, seal) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       row + (verify_ledger.row_seal(key, "suppressions", row),))
            db.commit()
            db.close()

        # (name, expected ok, what to do to a copy of the pristine ledger)
        cases = [
            ("pristine", True, None),
            ("edited body", False, EDIT_BODY),
            ("edited time", False, "UPDATE entries SET at = '2026-10-01T00:00:00.000Z' WHERE seq = 7"),
            ("deleted row", False, "DELETE FROM entries WHERE seq = 10"),
            ("deleted newest row", False, f"DELETE FROM entries WHERE seq = {head}"),
            ("row beside the chain (before)", False,
             "INSERT INTO entries (seq, kind, at, fingerprint, body, personal_hash, prev, hash) "
             "SELECT -3, kind, at, 'x' || fingerprint, body, personal_hash, prev, hash FROM entries WHERE seq = 1"),
            ("row beside the chain (after)", False,
             f"INSERT INTO entries (seq, kind, at, fingerprint, body, personal_hash, prev, hash) "
             f"SELECT {head + 1}, kind, at, 'y' || fingerprint, body, personal_hash, prev, hash FROM entries WHERE seq = 2"),
            ("reordered rows", False,
             "UPDATE entries SET seq = -1 WHERE seq = 3; UPDATE entries SET seq = 3 WHERE seq = 4; UPDATE entries SET seq = 4 WHERE seq = -1"),
            ("edited personal data", False, "UPDATE personal SET data = replace(data, 'a', 'e') WHERE seq = 12"),
            ("personal data deleted without a redaction", False, "DELETE FROM personal WHERE seq = 20"),
            ("personal data restored after forget", False, restore_personal),
            # SQLite gives an empty blob to C as a NULL pointer: muster once took it for "no row".
            ("personal data put back after forget, with an empty salt", False,
             f"INSERT INTO personal (seq, salt, data) VALUES ({forgotten}, x'', "
             "'{\"email\":\"bo@example.org\",\"name\":\"Bo Chen\"}')"),
            ("personal data put back after forget, salt and data empty", False,
             f"INSERT INTO personal (seq, salt, data) VALUES ({forgotten}, x'', '')"),
            ("stray personal data", False, "INSERT INTO personal (seq, salt, data) VALUES (100000, x'00', '{}')"),
            ("signature count edited", False, "UPDATE meta SET value = value + 1 WHERE key = 'signature_count'"),
            ("head hash edited", False, "UPDATE meta SET value = '" + "1" * 64 + "' WHERE key = 'head_hash'"),
            ("a meta record muster does not write", False, "INSERT INTO meta (key, value) VALUES ('note', 'hi')"),
            ("a trigger", False, "CREATE TRIGGER hide AFTER INSERT ON entries BEGIN SELECT 1; END"),
            ("an altered Merkle tree node", False, "UPDATE merkle_nodes SET hash = zeroblob(32) WHERE pos = 3"),
            ("the state index format 2 dropped", False, "CREATE INDEX outbox_by_state ON outbox(template, state)"),
            ("an outbox row for no chained signature", False,
             "INSERT INTO outbox (template, recipient, signature, state, updated_at) VALUES ('thank-you', 'abc', 3, 'queued', 'x')"),
            ("a suppression muster did not write", False,
             "INSERT INTO suppressions (recipient, reason, source, at) VALUES ('" + "ab" * 32 + "', 'complaint', 'inbox', '2026-11-28T11:00:00.000Z')"),
            ("a bounce changed after muster sealed it", False, "UPDATE bounces SET kind = 'soft'"),
            ("a bounce copied under a new id", False, "INSERT INTO bounces SELECT id + 100, recipient, template, kind, status, source, at, seal FROM bounces"),
            ("a suppression sealed with the ledger's key", True, sealed_suppression),
            ("the seal key removed", False, "DELETE FROM meta WHERE key = 'seal_key'"),
            ("an outbox row for a target key", True,
             "INSERT INTO outbox (template, recipient, signature, state, updated_at) VALUES ('deliver-petition', '" + "ab" * 32 + "', NULL, 'sent', 'x')"),
            ("a redaction of a non-signature", False, None),  # filled in below
            ("a mailbox key for a forgotten signer", False,
             f"INSERT INTO mailbox_keys (seq, key) VALUES ({forgotten}, X'{'ab' * 16}')"),
            ("a mailbox key for a withdrawn signature", False,
             f"INSERT INTO mailbox_keys (seq, key) VALUES ({withdrawn}, X'{'ab' * 16}')"),
            # (A deleted row is not detectable from the ledger alone: whether a signature
            # needs one depends on the workspace's rules. `muster dedupe` remakes them.)
            ("a mailbox key that is not a key", False, "INSERT INTO mailbox_keys (seq, key) VALUES (12, 'carla@example.org')"),
            ("the withdrawal's body edited", False,
             f"UPDATE entries SET body = replace(body, ':{withdrawn}', ':{withdrawn - 1}') WHERE seq = {withdrawal}"),
        ]
        # A whole new chain from entry 1 verifies again — only its head hash changes.
        rehashed = folder / "rehashed.sqlite"
        copy_ledger(pristine, rehashed)
        rechain(rehashed, EDIT_BODY)
        cases.append(("rewritten chain (verifies, new head)", True, rehashed))
        # A redaction entry naming an opt-out, correctly chained: only the redaction rule catches it.
        bad_redaction = folder / "bad-redaction.sqlite"
        copy_ledger(pristine, bad_redaction)
        rechain(bad_redaction, f"UPDATE entries SET body = '{{\"redacts\":{head}}}' WHERE kind = 'redaction'")
        cases[cases.index(("a redaction of a non-signature", False, None))] = ("a redaction of a non-signature", False, bad_redaction)
        # Withdrawals correctly chained but naming what no withdrawal may: only the
        # withdrawal rules catch them.
        for name, body in [("a withdrawal of an opt-out", f'{{"duplicate_of":1,"withdraws":{optout}}}'),
                           ("a withdrawal of an unknown entry", '{"duplicate_of":1,"withdraws":99999}'),
                           ("a withdrawal as a duplicate of itself", f'{{"duplicate_of":{withdrawn},"withdraws":{withdrawn}}}'),
                           ("a withdrawal without a target", '{"duplicate_of":1}')]:
            forged = folder / f"forged-{len(cases)}.sqlite"
            copy_ledger(pristine, forged)
            rechain(forged, f"UPDATE entries SET body = '{body}' WHERE seq = {withdrawal}")
            cases.append((name, False, forged))
        twice = folder / "withdrawn-twice.sqlite"
        copy_ledger(pristine, twice)
        rechain(twice, f"INSERT INTO entries (seq, kind, at, fingerprint, body, personal_hash, prev, hash) "
                       f"SELECT seq + 1, kind, at, fingerprint, body, personal_hash, '', '' FROM entries WHERE seq = {withdrawal}; "
                       f"UPDATE meta SET value = value + 1 WHERE key = 'head_seq'")
        cases.append(("a signature withdrawn twice", False, twice))

        pristine_head = None
        for name, expected, change in cases:
            path = folder / f"case-{len(name)}-{abs(hash(name))}.sqlite"
            if isinstance(change, pathlib.Path):
                path = change
            else:
                copy_ledger(pristine, path)
                if callable(change):
                    change(path)
                elif change:
                    tamper(path, change)
            a, b = verdicts(muster, ws, path)
            sa, sb = summary(a), summary(b)
            if name == "pristine":
                pristine_head = sa["head"]
            line = f"{name}: muster {'ok' if a['ok'] else 'FAILED at ' + str(sa['first_bad_entry'])}"
            if sa != sb or a.get("unsealed") != b.get("unsealed"):
                failures.append(f"{name}: the verifiers disagree:\n  muster verify:    {sa} {a.get('unsealed')}\n"
                                f"  verify_ledger.py: {sb} {b.get('unsealed')}")
            elif a["ok"] != expected:
                failures.append(f"{name}: expected {'ok' if expected else 'FAILED'}, both said {a}")
            elif name.startswith("rewritten") and sa["head"] == pristine_head:
                failures.append(f"{name}: a rewritten chain kept its head hash")
            else:
                print(f"test_verify_ledger: {line} — verify_ledger.py agrees", file=sys.stderr)
        failures += fixture_cases(muster, ws, folder)
    if failures:
        for failure in failures:
            print(f"test_verify_ledger: {failure}", file=sys.stderr)
        sys.exit(1)
    print(f"test_verify_ledger: {len(cases) + len(FIXTURE_CASES)} ledgers, both verifiers agree on each", file=sys.stderr)


FIXTURE = ROOT / "Tests" / "Fixtures" / "ledger-v1"
# (name, expected ok, SQL applied to a copy of the format-1 fixture before anything reads it)
FIXTURE_CASES = [
    ("the format-1 fixture", True, None),
    ("the format-1 fixture with the state index of older ledgers", True, "CREATE INDEX outbox_by_state ON outbox(template, state)"),
    ("the format-1 fixture with a table muster did not create", False, "CREATE TABLE notes (text)"),
    ("the format-1 fixture, personal data put back with an empty salt", False,
     "INSERT INTO personal (seq, salt, data) SELECT seq, x'', '{}' FROM entries "
     "WHERE kind = 'signature' AND seq NOT IN (SELECT seq FROM personal)"),
]


def fixture_cases(muster, ws, folder):
    """The committed format-1 ledger (Tests/Fixtures/ledger-v1), read as it is by
    verify_ledger.py, then opened by `muster verify` (which migrates it to the newest
    format and says so on stderr), then read again by verify_ledger.py: the three verdicts
    agree, and on the pristine fixture they are the ones its maker recorded."""
    failures = []
    expected = json.loads((FIXTURE / "expected.json").read_text())
    target = ws / "campaigns" / SLUG / "ledger.sqlite"

    def version_of(path):
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        finally:
            db.close()

    def python_verdict(path):
        proc = run([sys.executable, str(VERIFIER), str(path), "--json"], ws, check=False)
        if proc.returncode not in (0, 1):
            sys.exit(f"test_verify_ledger: verify_ledger.py exited {proc.returncode}: {proc.stderr.strip()}")
        return summary(json.loads(proc.stdout))

    for name, want, change in FIXTURE_CASES:
        for suffix in ("", "-wal", "-shm"):
            pathlib.Path(str(target) + suffix).unlink(missing_ok=True)
        shutil.copyfile(FIXTURE / expected["ledger"], target)
        if change:
            tamper(target, change)
        if version_of(target) != 1:
            failures.append(f"{name}: the fixture is not of format 1")
            continue
        format1 = python_verdict(target)
        first = run([muster, "verify", "--json"], ws, check=False)
        ours = summary(json.loads(first.stdout))
        migrated = version_of(target)
        theirs = python_verdict(target)
        again = run([muster, "verify", "--json"], ws, check=False)
        note = f"muster: migrated {target} from ledger format 1 to {migrated}"
        if not (ours == format1 == theirs):
            failures.append(f"{name}: the verifiers disagree:\n  verify_ledger.py (format 1):  {format1}\n"
                            f"  muster verify (migrating):    {ours}\n  verify_ledger.py (format {migrated}): {theirs}")
        elif ours["ok"] != want or (first.returncode == 0) != want:
            failures.append(f"{name}: expected {'ok' if want else 'FAILED'}, all said {ours} (exit {first.returncode})")
        elif change is None and (ours["head"] != expected["head"] or ours["count"] != expected["count"]):
            failures.append(f"{name}: head {ours['head']} and count {ours['count']}, not those expected.json records")
        elif migrated < 2 or note not in first.stderr:
            failures.append(f"{name}: muster verify left format {migrated} and said {first.stderr.strip()!r}, not {note!r}")
        elif "migrated" in again.stderr or summary(json.loads(again.stdout)) != ours:
            failures.append(f"{name}: a second muster verify did not find the ledger as the first left it: {again.stderr.strip()}")
        else:
            print(f"test_verify_ledger: {name}: {'ok' if ours['ok'] else 'FAILED at ' + str(ours['first_bad_entry'])}"
                  f" — verify_ledger.py agrees at format 1 and at format {migrated}", file=sys.stderr)
    return failures


def rechain(path, sql):
    """Applies `sql`, then recomputes every hash and link from entry 1 and the head, as
    someone rewriting the chain would (with the hash rules of docs/ledger-format.md)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import verify_ledger
    tamper(path, sql)
    db = sqlite3.connect(path)
    prev = verify_ledger.GENESIS.encode()
    rows = db.execute("""SELECT seq, CAST(kind AS BLOB), CAST(at AS BLOB), CAST(fingerprint AS BLOB), CAST(body AS BLOB),
                         CAST(personal_hash AS BLOB) FROM entries ORDER BY seq""").fetchall()
    leaves = []
    for seq, *fields in rows:
        fields = [verify_ledger.raw(f) for f in fields]
        digest = verify_ledger.entry_hash(seq, *fields, prev)
        db.execute("UPDATE entries SET prev = ?, hash = ? WHERE seq = ?", (prev.decode(), digest.decode(), seq))
        leaves.append(verify_ledger.leaf_hash(seq, *fields, prev))
        prev = digest
    db.execute("UPDATE meta SET value = ? WHERE key = 'head_hash'", (prev.decode(),))
    # …and the Merkle tree over the new entries (docs/transparency.md), when the ledger has one.
    if db.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'merkle_nodes'").fetchone()[0]:
        db.execute("DELETE FROM merkle_nodes")
        db.executemany("INSERT INTO merkle_nodes (pos, hash) VALUES (?, ?)", verify_ledger.merkle_nodes(leaves))
    db.commit()
    db.close()


if __name__ == "__main__":
    main()
