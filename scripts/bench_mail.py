#!/usr/bin/env python3
"""Mail benchmarks (issue: outreach mail), side by side against one local sink.

Postfix's smtp-sink (so that the sink is not the bottleneck) receives, in turn:
- muster sending N personalised messages with 8 connections (render, MIME, outbox
  bookkeeping with a durable write before and after every message);
- mailmerge 2.3.0 sending the same N with --no-limit (the tool a user would otherwise pick);
- smtp-source -d -s 8 pushing N messages of the same size over 8 reused connections:
  the most this machine and sink can take.
Then muster's peak memory on a blast of BENCH_MAIL_BIG recipients.

Writes the figures into BENCHMARKS.md between <!-- bench:mail --> markers.
Needs: postfix (smtp-sink, smtp-source) and mailmerge==2.3.0; scripts/bench installs them.
"""
import csv, datetime, os, pathlib, re, shutil, statistics, subprocess, sys, tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from benchlib import run_silent, start_sink, write_section  # noqa: E402
MUSTER = ROOT / ".build/release/muster"
FIXTURE = ROOT / ".build/release/muster-fixture"
N = int(os.environ.get("BENCH_MAIL", "10000"))
BIG = int(os.environ.get("BENCH_MAIL_BIG", "100000"))
ROUNDS = int(os.environ.get("BENCH_MAIL_ROUNDS", "3"))

TEMPLATE = """---
subject: "Thank you, {{first_name}}: we are {{campaign.count}}"
audience: signers
---
Hi {{first_name}},

Thank you for signing **{{campaign.title}}** from {{region}}. We are now {{campaign.count}}
of the {{campaign.goal}} signatures we aim for, with {{campaign.days_left}} days to go.

The fastest way to help: forward this email to one colleague who would sign too.

In solidarity,
the Fair Rates Collective
"""


def run_timed(args, cwd, env=None):
    """Wall seconds and peak RSS (MiB) of a command run with its output discarded."""
    elapsed, usage = run_silent(args, cwd, env)
    return elapsed, usage.ru_maxrss / 1024


def workspace(tmp, name, count, port):
    ws = tmp / name
    subprocess.run([MUSTER, "init", ws], check=True, capture_output=True)
    (ws / "muster.yaml").write_text(f'sender: "Fair Rates Collective <hello@fairrates.example>"\nsmtp:\n  url: smtp://127.0.0.1:{port}\n  starttls: never\n')
    subprocess.run([MUSTER, "new", "bench", "--title", "Fair rates for translators", "--goal", str(max(count, 1000)), "--deadline", "2027-03-31"], cwd=ws, check=True, capture_output=True)
    (ws / "campaigns/bench/emails/thanks.md").write_text(TEMPLATE)
    subprocess.run([FIXTURE, ws, "bench", str(count)], check=True, capture_output=True)
    return ws


def main():
    for tool in ("/usr/sbin/smtp-sink", "/usr/sbin/smtp-source"):
        if not os.path.exists(tool):
            sys.exit(f"bench: {tool} missing (apt-get install postfix)")
    if shutil.which("mailmerge") is None:
        sys.exit("bench: mailmerge missing (pip install mailmerge==2.3.0)")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="muster-bench-mail-"))
    sink, port = start_sink()
    try:
        print(f"bench: {N:,} signers", file=sys.stderr)
        ws = workspace(tmp, "ws", N, port)
        env = dict(os.environ, MUSTER_SMTP_URL=f"smtp://127.0.0.1:{port}")

        # The size of one of muster's messages, for smtp-source.
        dry = tmp / "dry"
        subprocess.run([MUSTER, "mail", "send", "thanks", "--dry-run", "--out", dry, "--limit", "20"], cwd=ws, check=True, capture_output=True)
        sizes = [p.stat().st_size for p in dry.glob("*.eml")]
        size = int(statistics.mean(sizes))

        # mailmerge on the same recipients (names and addresses from the same fixture).
        mm = tmp / "mailmerge"
        mm.mkdir()
        (mm / "mailmerge_server.conf").write_text(f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\n")
        (mm / "mailmerge_template.txt").write_text(
            "TO: {{email}}\nSUBJECT: Thank you, {{first_name}}: we are " + str(N) + "\nFROM: Fair Rates Collective <hello@fairrates.example>\n\n"
            "Hi {{first_name}},\n\nThank you for signing Fair rates for translators from {{region}}. We are now " + str(N) + "\n"
            "of the signatures we aim for.\n\nThe fastest way to help: forward this email to one colleague who would sign too.\n\n"
            "In solidarity,\nthe Fair Rates Collective\n")
        with open(mm / "mailmerge_database.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["email", "first_name", "region"])
            for i in range(N):
                writer.writerow([f"signer{i}@bench.example", "Bench", "Lyon"])

        # The machine is shared: ROUNDS runs of each, interleaved, and the medians compared.
        muster_runs, mailmerge_runs, source_runs = [], [], []
        for round_ in range(ROUNDS):
            print(f"bench: round {round_ + 1} of {ROUNDS}", file=sys.stderr)
            fresh = tmp / f"ws-{round_}"
            shutil.copytree(ws, fresh)  # an outbox with nothing sent yet
            muster_runs.append(run_timed([MUSTER, "mail", "send", "thanks", "--yes", "--connections", "8"], fresh, env))
            status = subprocess.run([MUSTER, "mail", "status", "thanks", "--json"], cwd=fresh, capture_output=True, text=True).stdout
            assert f'"sent":{N}' in status, status
            shutil.rmtree(fresh)
            mailmerge_runs.append(run_timed(["mailmerge", "--no-dry-run", "--no-limit",
                                             "--template", mm / "mailmerge_template.txt",
                                             "--database", mm / "mailmerge_database.csv",
                                             "--config", mm / "mailmerge_server.conf"], mm))
            source_runs.append(run_timed(["/usr/sbin/smtp-source", "-d", "-s", "8", "-m", str(N), "-l", str(size),
                                          "-f", "hello@fairrates.example", "-t", "signer@bench.example", f"127.0.0.1:{port}"], tmp))
        median = lambda runs: statistics.median(t for t, _ in runs)
        muster_t, mailmerge_t, source_t = median(muster_runs), median(mailmerge_runs), median(source_runs)
        muster_mem = max(m for _, m in muster_runs)
        spread = lambda runs: f"{min(t for t, _ in runs):.2f}–{max(t for t, _ in runs):.2f} s"

        print(f"bench: peak memory for {BIG:,} recipients", file=sys.stderr)
        big = workspace(tmp, "big", BIG, port)
        big_t, big_mem = run_timed([MUSTER, "mail", "send", "thanks", "--yes", "--connections", "8"], big, env)

        rate = lambda t: N / t
        section = f"""<!-- bench:mail -->
## Mail: muster, mailmerge and smtp-source against one sink

Measured {datetime.date.today().isoformat()} by `make bench` (scripts/bench_mail.py), release build,
against the same Postfix `smtp-sink` on loopback: {ROUNDS} rounds, each running the three senders in
turn; the table gives each one's median (and the range of its runs). {N:,} personalised messages
of about {size:,} bytes (multipart text + HTML, quoted-printable).

| sender | wall time (median) | runs | messages/s | vs muster |
|---|---|---|---|---|
| `muster mail send thanks --yes --connections 8` (render, MIME, outbox: rows claimed in durable batches, each hand-over journalled) | {muster_t:.2f} s | {spread(muster_runs)} | {rate(muster_t):,.0f} | 1.00× |
| `mailmerge --no-dry-run --no-limit` (mailmerge 2.3.0: one connection and login per message) | {mailmerge_t:.2f} s | {spread(mailmerge_runs)} | {rate(mailmerge_t):,.0f} | {rate(mailmerge_t) / rate(muster_t):.2f}× |
| `smtp-source -d -s 8 -m {N} -l {size}` (no rendering, no bookkeeping: the ceiling) | {source_t:.2f} s | {spread(source_runs)} | {rate(source_t):,.0f} | {rate(source_t) / rate(muster_t):.2f}× |

muster sends **{rate(muster_t) / rate(mailmerge_t):.1f}× mailmerge's rate** (target ≥ 10×) and reaches
**{100 * rate(muster_t) / rate(source_t):.1f}% of smtp-source's** (target ≥ 40%). Peak memory:
{muster_mem:.0f} MiB for {N:,} recipients; **{big_mem:.0f} MiB for {BIG:,} recipients** (target < 100 MB),
which took {big_t:.1f} s ({BIG / big_t:,.0f} messages/s).
<!-- /bench:mail -->"""
        write_section("mail", section)
    finally:
        sink.terminate()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
