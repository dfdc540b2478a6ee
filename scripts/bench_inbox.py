#!/usr/bin/env python3
"""`muster inbox` on a mailbox of N bounces (issue 13): wall, CPU, peak memory, and the
time split between waiting on the IMAP server and muster's own work.

For each point (N, then N/4, to show that memory does not grow with the mailbox):
- a workspace with one campaign whose N signers come from `muster import` of a CSV;
- a real blast (`mail send`, VERP on) to the tests' loopback SMTP server
  (Tests/support/smtp_server.py), which keeps every message: so muster has outbox rows,
  and each recipient's own Message-ID and VERP return path are known;
- N bounces, one per signer, cycling through the real-world shapes of the corpus
  (Tests/MusterKitTests/Fixtures/bounces/: RFC 3464, Postfix, Exim, qmail, Exchange,
  Gmail, Yahoo, mailbox full, delay notice, ARF complaint, RFC 3834 auto-reply),
  rewritten for that recipient, written into a throwaway Dovecot's maildir before it
  starts (Tests/support/dovecot.py --load);
- `muster inbox --json` over STARTTLS, timed with benchlib.measure; its `timings` give
  the split (list, fetch, move: the server; processing: parse, classify, ledger).

Writes the figures into BENCHMARKS.md between <!-- bench:inbox --> markers.
BENCH_INBOX_N (default 10000) sets N; BENCH_MUSTER the binary (default the release build).
Needs dovecot-imapd, openssl and aiosmtpd (scripts/setup installs them).
"""
import datetime, json, os, pathlib, platform, re, shutil, subprocess, sys, tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from benchlib import measure, write_section  # noqa: E402

MUSTER = pathlib.Path(os.environ.get("BENCH_MUSTER", ROOT / ".build/release/muster")).resolve()
N = int(os.environ.get("BENCH_INBOX_N", "10000"))
CORPUS = ROOT / "Tests/MusterKitTests/Fixtures/bounces"
SUPPORT = ROOT / "Tests/support"
# The shapes a bounce mailbox really receives, each tied by muster's Message-ID or VERP.
SHAPES = ["rfc3464-hard.eml", "postfix-hard.eml", "exim-hard.eml", "qmail-hard.eml", "exchange-hard.eml",
          "gmail-hard.eml", "yahoo-hard.eml", "postfix-mailbox-full.eml", "postfix-delayed.eml",
          "arf-complaint.eml", "autoreply-rfc3834.eml"]
TEMPLATE = """---
subject: "Thank you, {{first_name}}"
audience: signers
---
Hi {{first_name}},

Thank you for signing **{{campaign.title}}**. We are now {{campaign.count}}.

the Fair Rates Collective
"""


def run(args, cwd=None, env=None):
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(map(str, args[:3]))} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return proc.stdout


def blast(tmp, n):
    """A workspace of n imported signers after a real blast; the (recipient, envelope
    sender, Message-ID) of every message the relay received."""
    ws = tmp / "ws"
    run([MUSTER, "init", ws])
    run([MUSTER, "new", "bench", "--title", "Fair rates for translators", "--goal", str(max(n, 1000)),
         "--deadline", "2027-03-31"], cwd=ws)
    (ws / "campaigns/bench/emails/thanks.md").write_text(TEMPLATE)
    csv_path = tmp / "signers.csv"
    with open(csv_path, "w", encoding="utf-8") as fh:
        fh.write("first_name,last_name,email,region\n")
        regions = ["Lyon", "Paris", "Marseille", "Lille", "Bordeaux"]
        for i in range(n):
            fh.write(f"Person{i},Signer,signer{i}@bench.example,{regions[i % 5]}\n")
    imported = json.loads(run([MUSTER, "import", csv_path, "--json"], cwd=ws))
    if imported["added"] != n:
        sys.exit(f"bench: import added {imported['added']} of {n}: {imported.get('reasons')}")
    csv_path.unlink()
    spool = tmp / "spool"
    relay = subprocess.Popen([sys.executable, SUPPORT / "smtp_server.py", "--spool", spool, "--exit-on-stdin-eof"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(relay.stdout.readline())
        (ws / "muster.yaml").write_text('sender: "Fair Rates Collective <hello@fairrates.example>"\n'
                                        f"smtp:\n  url: smtp://127.0.0.1:{port}\n  starttls: never\n"
                                        "  verp: bounces@fairrates.example\n")
        run([MUSTER, "mail", "send", "thanks", "--yes", "--connections", "8"], cwd=ws)
    finally:
        relay.stdin.close()
        relay.wait(30)
    sent = []
    for meta_path in sorted(spool.glob("*.json")):
        meta = json.loads(meta_path.read_text())
        raw = meta_path.with_suffix(".eml").read_bytes()
        header = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
        message_id = next(line.split(":", 1)[1].strip().strip("<>") for line in header.split("\r\n")
                          if line.lower().startswith("message-id:"))
        for rcpt in meta["rcpt_tos"]:
            sent.append((rcpt, meta["mail_from"], message_id))
    shutil.rmtree(spool)
    if len(sent) != n:
        sys.exit(f"bench: the relay received {len(sent)} of {n} messages")
    return ws, sent


def bounces(tmp, sent):
    """One bounce per message sent, the corpus shapes in turn, as files for --load."""
    shapes = [(CORPUS / name).read_text(encoding="utf-8") for name in SHAPES]
    folder = tmp / "bounces"
    folder.mkdir()
    files = []
    for i, (rcpt, envelope, message_id) in enumerate(sent):
        # Each notice its own Message-ID, as real ones have (muster counts a notice once by it).
        text = re.sub(r"(?im)^(Message-Id: <)", rf"\g<1>bench{i}.", shapes[i % len(shapes)], count=1)
        text = text.replace("{{MESSAGE_ID}}", message_id).replace("{{ENVELOPE}}", envelope)
        path = folder / f"{i:06d}.eml"
        path.write_text(text.replace("{{RCPT}}", rcpt), encoding="utf-8")
        files.append(path)
    return files


def point(n):
    """Sets up and measures one mailbox of n bounces."""
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="muster-bench-inbox-"))
    tmp.chmod(0o711)  # as root, Dovecot runs as 'nobody' and must reach tmp/dovecot (not list tmp)
    server = None
    try:
        print(f"bench: {n:,} signers: import and blast", file=sys.stderr)
        ws, sent = blast(tmp, n)
        files = bounces(tmp, sent)
        print(f"bench: {n:,} bounces into Dovecot", file=sys.stderr)
        # The list of files is long: dovecot.py reads it from its arguments, a few hundred KiB.
        server = subprocess.Popen([sys.executable, SUPPORT / "dovecot.py", "serve", "--dir", tmp / "dovecot", "--load", *files],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        info = json.loads(server.stdout.readline() or "{}")
        if "plain" not in info:
            sys.exit(f"bench: dovecot did not start: {info.get('log', '')[-1000:]}")
        shutil.rmtree(tmp / "bounces")
        settings = (ws / "muster.yaml").read_text()
        (ws / "muster.yaml").write_text(settings + f"inbox:\n  url: imap://127.0.0.1:{info['plain']}\n"
                                        f"  username: {info['user']}\n  ca_file: {info['ca']}\n")
        os.environ["MUSTER_IMAP_PASSWORD"] = info["password"]
        print(f"bench: muster inbox on {n:,} messages", file=sys.stderr)
        out = tmp / "inbox.json"
        load_before = os.getloadavg()[0]
        wall, cpu, rss = measure([MUSTER, "inbox", "--json"], cwd=ws, stdout=out)
        load_after = os.getloadavg()[0]
        summary = json.loads(out.read_text())
        counted = sum(summary[k] for k in ("hard", "soft", "delayed", "complaints", "auto_replies"))
        if summary["scanned"] != n or counted != n or summary["unrecognised"] or summary["untouched"]:
            sys.exit(f"bench: not every bounce was tied to its message: "
                     f"{ {k: v for k, v in summary.items() if k not in ('actions', 'timings')} }")
        return {"n": n, "wall": wall, "cpu": cpu, "rss": rss, "timings": summary["timings"], "load": (load_before, load_after),
                "counts": {k: summary[k] for k in ("hard", "soft", "delayed", "complaints", "auto_replies", "suppressed_now")}}
    finally:
        os.environ.pop("MUSTER_IMAP_PASSWORD", None)
        if server:
            server.stdin.close()
            server.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


def row(p):
    t = p["timings"]
    imap = t["imap_list_seconds"] + t["imap_fetch_seconds"] + t["imap_move_seconds"]
    return (f"| {p['n']:,} | {p['wall']:.1f} s | {p['cpu']:.1f} s | {p['n'] / p['wall']:,.0f} | "
            f"{imap:.1f} s ({t['imap_list_seconds']:.2f} / {t['imap_fetch_seconds']:.2f} / {t['imap_move_seconds']:.2f}) | "
            f"{t['processing_seconds']:.1f} s | {p['rss']:.0f} MiB |")


def main():
    for need in ("openssl",):
        if shutil.which(need) is None:
            sys.exit(f"bench: {need} missing (bash scripts/setup with MUSTER_SETUP_BENCH=1)")
    if not (shutil.which("dovecot") or os.path.exists("/usr/sbin/dovecot")):
        sys.exit("bench: dovecot missing (apt-get install dovecot-imapd)")
    if not MUSTER.exists():
        sys.exit(f"bench: {MUSTER} missing (swift build -c release, or set BENCH_MUSTER)")
    points = [point(N), point(max(N // 4, 1))]
    build = "debug build, a smoke run: not a result" if "/debug/" in str(MUSTER) else "release build"
    counts = ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in points[0]["counts"].items())
    cpu = platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    section = f"""<!-- bench:inbox -->
## Inbox: `muster inbox` on a mailbox of bounces

Measured {datetime.date.today().isoformat()} by `BENCH_ONLY=inbox make bench` (scripts/bench_inbox.py), {build}, on
{os.cpu_count()} cores ({cpu}). A campaign of N imported signers after a real blast (VERP on);
then one bounce per message in a throwaway Dovecot on loopback (STARTTLS), cycling through the
corpus's real-world shapes (RFC 3464, Postfix, Exim, qmail, Exchange, Gmail, Yahoo, mailbox full,
delay notice, ARF complaint, auto-reply), and one `muster inbox --json` that lists, fetches,
classifies, records and moves every message. The split comes from its `timings` (monotonic clock):
IMAP is the time spent waiting on the server (list / fetch / move), processing is the rest
(MIME parsing, classifying, ledger and suppression writes). At N: {counts}.

| messages | wall time | CPU (user+sys) | messages/s | IMAP (list / fetch / move) | processing | peak memory |
|---|---|---|---|---|---|---|
{row(points[0])}
{row(points[1])}

Messages are fetched and processed one at a time and moved in batches (one `UID MOVE` of a UID
set per folder once 500 wait, and at the end): peak memory at N and at N/4 should be about the
same (streaming); only the list of UIDs and the one-line-per-message report grow with N.
The machine is shared: the 1-minute load average was {points[0]['load'][0]:.1f} before and
{points[0]['load'][1]:.1f} after the run at N, {points[1]['load'][0]:.1f} and {points[1]['load'][1]:.1f} at N/4
(2 cores; above 2, other work competed for them).
<!-- /bench:inbox -->"""
    write_section("inbox", section)


if __name__ == "__main__":
    main()
