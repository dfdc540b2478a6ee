#!/usr/bin/env python3
"""Writes the reliability suite's figures (JSON lines from MUSTER_FIGURES) into the
suite section of RELIABILITY.md. Usage: reliability_report.py FIGURES STATUS SECONDS"""
import json
import os
import platform
import re
import sys
from datetime import date

ROWS = [
    ("concurrent signing", "8 processes × 1,000 `sign`, 10% of emails shared across processes",
     "count = distinct canonical emails; `verify` passes; adds/s and the slowest add", "ConcurrencyReliabilityTests"),
    ("concurrent sign during import and blast", "`sign` in a loop while a 100,000-row import and a 2,000-message blast run",
     "nothing lost, no `database is locked` reaching the user", "ConcurrencyReliabilityTests"),
    ("kill during import", "kill -9 at random moments of a 200,000-row import, 20 times, then rerun",
     "all or nothing each time; final ledger identical to a clean import", "CrashReliabilityTests"),
    ("kill during import: personal data", "kill -9 at random moments of a 100,000-row import with rejected rows, 12 times, and of its `--dry-run`, 12 times (TMPDIR pointed at a test folder)",
     "no file holding an imported name or address left in the workspace, beside the input or in $TMPDIR (only the ledger, and a completed import's rejects file)", "CrashReliabilityTests"),
    ("kill during blast", "kill -9 mid-blast of 2,000, 5 times, then rerun; again with a relay answering 451 to one message in five",
     "no recipient missed; duplicates at the sink only among `unknown` rows; with a relay answering 451 to one in five, at most one `unknown` per connection per kill", "CrashReliabilityTests"),
    ("erasure during a blast", "`forget` by a second process while a 550 quoting the address is on its way; `unsubscribe` and `forget` mid-blast at --rate 2/s",
     "the address's bytes in no campaign file (database, WAL, journals); neither address mailed after the command returned", "RelayReliabilityTests"),
    ("forged bounces", "bounce-shaped mail naming real signers: no Message-ID or VERP token of muster's, another workspace's tokens, tampered tokens, tokens for addresses that never got the mail",
     "nobody suppressed but the genuine bounces; the forgeries moved to muster/unrecognised", "InboxReliabilityTests"),
    ("dropped IMAP connection", "`muster inbox` through a proxy that cuts the TLS connection mid-fetch (Dovecot behind it), then a rerun",
     "exit 75 naming the server; the rerun carries on; nothing processed twice, nothing unrelated moved or marked read", "InboxIMAPCLITests"),
    ("disk full", "a file-size limit (`prlimit --fsize`) during an import and during a blast",
     "clear error, exit 75, ledger still verifies, rerun after lifting the limit completes", "CrashReliabilityTests"),
    ("relay faults", "421 at greeting, 451 after DATA, 550 on RCPT, reset mid-DATA, closed after the dot, a relay that never answers",
     "deferred and retried with backoff / failed with the reply / unknown; a time-out, not a hang", "RelayReliabilityTests"),
    ("TLS", "STARTTLS required but not offered; a self-signed certificate without `smtp.ca_file`",
     "refused with a clear message, nothing sent in clear", "RelayReliabilityTests"),
    ("header injection", "CR, LF, NUL in names, subjects, Reply-To, fields, addresses (command line, CSV, template, a ledger edited behind muster's back)",
     "refused or encoded; the sink sees no extra header or recipient", "InputReliabilityTests"),
    ("HTML injection", "`<script>`, `<img onerror>`, `{{` in signer fields",
     "escaped in HTML, literal in text, never re-rendered as a template", "InputReliabilityTests"),
    ("spreadsheet formulas", "`=HYPERLINK(...)`, `+1`, `-1+2`, `@SUM(1)`, tab and CR prefixes, in import then export",
     "neutralised in CSV export (and the rejects file), value preserved in JSON", "InputReliabilityTests"),
    ("paths", "`../x`, `%2e%2e/`, absolute paths, control characters, fullwidth dots as slugs and `--out` targets",
     "refused; nothing written outside the intended folder", "InputReliabilityTests"),
    ("YAML", "billion-laughs aliases, 10,000 nested brackets, a 100 MB manifest, tabs, duplicate keys",
     "refused within 1 s and 100 MB", "InputReliabilityTests"),
    ("Unicode", "NFC vs NFD, IDN vs xn--, upper-case domains; invalid UTF-8 in every input",
     "one canonical signer; invalid UTF-8 refused with its position", "InputReliabilityTests"),
    ("multiline comments", "a Google Forms-style export whose comments have paragraphs (LF, CRLF), some holding a markdown table, `<script>`, a `Bcc:` line, a formula",
     "accepted with LF line breaks; never in a report or a header; CSV export then import gives them back unchanged", "InputReliabilityTests"),
    ("kiosk lock", "every key that ends or suspends a shell program (Ctrl-C, Ctrl-\\, Ctrl-Z, Ctrl-D), flow control, escape sequences, keyboard signals sent from outside, random bytes, a wrong passphrase",
     "the kiosk keeps running; only the passphrase ends it (exit 0); terminal settings restored", "KioskReliabilityTests"),
    ("tampering", "edit, delete, reorder, truncate rows with sqlite3; rewrite the chain from a point",
     "`verify` fails naming the first bad entry; a published head hash no longer matches", "LedgerReliabilityTests"),
    ("tampering beside the chain", "rows copied beside the chain (seq ≤ 0) in `entries` and `personal`; a volunteer's ledger so forged, merged; all but the last 10 entries of a 50,000+ ledger deleted with the count fixed up (the two-half verify); a forged seq of 400,000,000",
     "never counted, listed, exported, mailed or merged; `verify` exits 1 naming the row; `merge` refuses (65); bounded memory", "LedgerReliabilityTests"),
    ("erasure", "`forget`, then search the database file, its WAL and every export for the email's bytes",
     "not found; count unchanged; `verify` passes", "LedgerReliabilityTests"),
    ("secrets", "the SMTP password through `--verbose`, error messages, `.eml` output",
     "never printed; ledger and workspace files 0600 / 0700", "LedgerReliabilityTests"),
]


def cell(text):
    return text.replace("|", "\\|").replace("\n", " ")


def main():
    figures_path, status, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    figures = {}
    with open(figures_path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                record = json.loads(line)
                figures.setdefault(record["row"], []).append(record["figure"])
    missing = [row for row, _, _, _ in ROWS if row not in figures]
    if status != 0:
        outcome = "FAILED (exit %d), see .build/reliability.log" % status
    elif missing:
        outcome = "the tests passed, but %d row%s reported no figure (%s)" % (
            len(missing), "" if len(missing) == 1 else "s", ", ".join(missing))
    else:
        outcome = "every row passed"
    lines = [
        "<!-- suite -->",
        "## The suite",
        "",
        f"Last run {date.today().isoformat()} by `make reliability` (scripts/reliability: the release binary, "
        f"sizes as in the table) on {os.cpu_count()} cores, {platform.system()} {platform.release()}: "
        f"**{outcome}** in {seconds // 60} min {seconds % 60} s "
        f"(load average at the end {os.getloadavg()[0]:.1f}: the machine is shared, so rates and latencies are indicative). "
        "`make test` runs the same tests at smaller sizes (see each test's `Reliability.scale`).",
        "",
        "| row | fault or input | expected | last measured | tests |",
        "|---|---|---|---|---|",
    ]
    for row, fault, expected, suite in ROWS:
        measured = "<br>".join(cell(f) for f in figures.get(row, []))
        if not measured:
            measured = "**no figure: the test did not finish**"
        lines.append(f"| {row} | {cell(fault)} | {cell(expected)} | {measured} | `{suite}` |")
    lines += ["<!-- /suite -->"]
    section = "\n".join(lines)

    path = "RELIABILITY.md"
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else "# Reliability\n"
    if "<!-- suite -->" in text:
        text = re.sub(r"<!-- suite -->.*?<!-- /suite -->", lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"RELIABILITY.md: {len(ROWS) - len(missing)} of {len(ROWS)} rows measured" + (f"; missing: {', '.join(missing)}" if missing else ""))


if __name__ == "__main__":
    main()
