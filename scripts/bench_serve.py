#!/usr/bin/env python3
"""`muster serve` under load (issue 12), measured with wrk on loopback.

One server (release build, one campaign, `serve.trust_proxy: 127.0.0.1`, no relay: the
confirmation mail of every form waits, queued, in the ledger) takes, in turn, for
BENCH_SERVE_SECONDS (60) each at BENCH_SERVE_CONNECTIONS (256) connections, 2 wrk threads:
- `GET /style.css`, the trivial route every other figure is compared with;
- `POST /c/<slug>/sign` (scripts/bench_serve/sign.lua): valid forms, each with its own
  address at a large mail provider and its own client address (X-Forwarded-For from
  the trusted proxy), the page's form token and this server's Origin;
- `POST /confirm/<token>` (confirm.lua): the confirmation button of the forms just
  stored, one token per request;
- `GET /c/<slug>` (the petition page) and `GET /c/<slug>/count.json`.
The server's peak memory (VmHWM) is read at the end. With BENCH_SERVE_BEFORE naming
another muster binary (the build before group commit), the trivial, sign and confirm
runs are repeated against it on a fresh workspace, and its figures shown beside.

Then the mail run: a fresh workspace whose relay is Postfix's smtp-sink (dumping each
message to a file), BENCH_SERVE_MAILS (10,000) forms sent from 16 client threads, and
the time from each form's submission to its confirmation mail's arrival at the sink
(the dump file's modification time).

Writes the figures into BENCHMARKS.md between <!-- bench:serve --> markers.
Needs: wrk, postfix (smtp-sink); scripts/bench installs them.
"""
import datetime, http.client, os, pathlib, re, shutil, signal, sqlite3, statistics, subprocess, sys
import tempfile, threading, time, urllib.parse, urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from benchlib import free_port, start_sink, write_section  # noqa: E402

MUSTER = pathlib.Path(os.environ.get("BENCH_MUSTER", ROOT / ".build/release/muster"))
BEFORE = os.environ.get("BENCH_SERVE_BEFORE")
BEFORE_LABEL = os.environ.get("BENCH_SERVE_BEFORE_LABEL", "before group commit")
SECONDS = int(os.environ.get("BENCH_SERVE_SECONDS", "60"))
CONNECTIONS = int(os.environ.get("BENCH_SERVE_CONNECTIONS", "256"))
MAILS = int(os.environ.get("BENCH_SERVE_MAILS", "10000"))
WRK_THREADS = 2
SCRIPTS = ROOT / "scripts/bench_serve"
SLUG = "bench"


def workspace(muster, path, smtp_port=None):
    subprocess.run([muster, "init", path], check=True, capture_output=True)
    settings = 'sender: "Fair Rates Collective <hello@fairrates.example>"\nserve:\n  trust_proxy: 127.0.0.1\n'
    if smtp_port:
        settings += f"smtp:\n  url: smtp://127.0.0.1:{smtp_port}\n  starttls: never\n"
    (path / "muster.yaml").write_text(settings)
    subprocess.run([muster, "new", SLUG, "--title", "Fair rates for translators", "--goal", "1000000",
                    "--deadline", "2099-12-31"], cwd=path, check=True, capture_output=True)
    return path


class Server:
    """`muster serve` on a free loopback port; its log (one line per request) to a file."""

    def __init__(self, muster, ws, env=None):
        self.port = free_port()
        self.ws = ws
        self.log_path = ws.parent / f"{ws.name}-serve.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([muster, "serve", "--listen", f"127.0.0.1:{self.port}", "-c", SLUG], cwd=ws,
                                     stdout=subprocess.DEVNULL, stderr=self.log, env=env or os.environ)
        deadline = time.monotonic() + 120
        while b"muster: serving http://" not in self.log_path.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"bench: muster serve did not start:\n{self.log_path.read_text()}")
            time.sleep(0.05)

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def peak_rss_mib(self):
        for line in pathlib.Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def csrf(self):
        html = urllib.request.urlopen(f"{self.base}/c/{SLUG}").read().decode()
        return re.search(r'name="csrf" value="([^"]+)"', html).group(1)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        status = self.proc.wait(timeout=120)
        self.log.close()
        if status != 0:
            sys.exit(f"bench: muster serve exited with {status}")


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url, script=None, env=None):
    args = ["wrk", f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", "--timeout", "10s"]
    if script:
        args += ["-s", str(SCRIPTS / script)]
    out = subprocess.run(args + [url], env=dict(os.environ, **(env or {})), capture_output=True, text=True, check=True).stdout

    def latency(percent):
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, flags=re.M)
        return float(match.group(1)) * UNITS[match.group(2)]
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result = {
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "p50": latency(50), "p99": latency(99),
        "non2xx": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
    }
    print(f"bench:   {url.split('127.0.0.1')[1]}: {result['rate']:,.0f}/s p50 {result['p50']:.2f} ms "
          f"p99 {result['p99']:.2f} ms, {result['non2xx']} non-2xx, {result['socket_errors']} socket errors", file=sys.stderr)
    return result


def query(ws, sql):
    with sqlite3.connect(ws / f"campaigns/{SLUG}/ledger.sqlite", timeout=60) as db:
        return db.execute(sql).fetchall()


def load_runs(muster, tmp, name, full=True):
    """The wrk runs against one server; the figures of each route, and the checks."""
    ws = workspace(muster, tmp / name)
    server = Server(muster, ws)
    runs, checks = {}, {}
    try:
        origin = server.base
        runs["trivial"] = wrk(f"{server.base}/style.css")
        runs["sign"] = wrk(f"{server.base}/c/{SLUG}/sign", "sign.lua",
                           {"BENCH_SLUG": SLUG, "BENCH_CSRF": server.csrf(), "BENCH_ORIGIN": origin, "BENCH_RUN": name})
        checks["stored"] = query(ws, "SELECT count(*) FROM pending WHERE purpose = 'confirm' AND held IS NULL AND mail_state = 'queued'")[0][0]
        checks["held"] = query(ws, "SELECT count(*) FROM pending WHERE held IS NOT NULL")[0][0]
        tokens = [row[0] for row in query(ws, "SELECT mail_token FROM pending WHERE purpose = 'confirm' AND held IS NULL AND mail_token IS NOT NULL ORDER BY id")]
        token_file = tmp / f"{name}-tokens"
        token_file.write_text("\n".join(tokens) + "\n")
        runs["confirm"] = wrk(f"{server.base}/confirm/", "confirm.lua",
                              {"BENCH_TOKENS": str(token_file), "BENCH_ORIGIN": origin, "BENCH_THREADS": str(WRK_THREADS)})
        token_file.unlink()
        checks["tokens"] = len(tokens)
        checks["confirmed"] = query(ws, "SELECT count(*) FROM entries WHERE kind = 'signature'")[0][0]
        if full:
            runs["petition"] = wrk(f"{server.base}/c/{SLUG}")
            runs["count.json"] = wrk(f"{server.base}/c/{SLUG}/count.json")
        checks["peak_rss"] = server.peak_rss_mib()
    finally:
        server.stop()
    checks["verify"] = subprocess.run([muster, "verify"], cwd=ws, capture_output=True).returncode == 0
    shutil.rmtree(ws)
    return runs, checks


def mail_run(tmp):
    """MAILS forms against a server with a relay; submission-to-delivery times."""
    dump = tmp / "sink"
    sink, smtp_port = start_sink(dump)
    ws = workspace(MUSTER, tmp / "mail", smtp_port)
    server = Server(MUSTER, ws)
    try:
        csrf = server.csrf()
        submitted = {}
        failures = []
        lock = threading.Lock()

        def client(worker, count):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            for i in range(worker, count, 16):
                body = urllib.parse.urlencode({"csrf": csrf, "name": "Bench Signer", "email": f"mail{i}x@gmail.com",
                                               "field.region": "Lyon"})
                headers = {"Content-Type": "application/x-www-form-urlencoded", "Origin": server.base,
                           "X-Forwarded-For": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"}
                start = time.time()
                conn.request("POST", f"/c/{SLUG}/sign", body, headers)
                response = conn.getresponse()
                response.read()
                with lock:
                    if response.status == 200:
                        submitted[i] = start
                    else:
                        failures.append(response.status)
        began = time.monotonic()
        threads = [threading.Thread(target=client, args=(w, MAILS)) for w in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        submit_seconds = time.monotonic() - began
        if failures:
            sys.exit(f"bench: {len(failures)} forms refused in the mail run: {failures[:5]}")
        deadline = time.monotonic() + 1800
        while sum(1 for _ in dump.rglob("*") if _.is_file()) < MAILS and time.monotonic() < deadline:
            time.sleep(0.5)
        drained = time.monotonic() - began
        delays = []
        for path in dump.rglob("*"):
            if not path.is_file():
                continue
            match = re.search(rb"mail(\d+)x@gmail\.com", path.read_bytes())
            if match and int(match.group(1)) in submitted:
                delays.append(path.stat().st_mtime - submitted.pop(int(match.group(1))))
        sent = query(ws, "SELECT count(*) FROM pending WHERE mail_state = 'sent'")[0][0]
    finally:
        server.stop()
        sink.terminate()
    delays.sort()
    return {"delivered": len(delays), "missing": len(submitted), "sent": sent, "submit_seconds": submit_seconds,
            "drained": drained, "p50": statistics.median(delays) if delays else float("nan"),
            "p95": delays[int(0.95 * (len(delays) - 1))] if delays else float("nan"),
            "max": delays[-1] if delays else float("nan")}


def row(label, run, trivial, target, p99_target=None):
    ratio = run["rate"] / trivial["rate"]
    met = run["rate"] >= target and (p99_target is None or run["p99"] < p99_target) and run["non2xx"] == 0
    return (f"| {label} | {run['rate']:,.0f} | {run['p50']:.1f} ms | {run['p99']:.1f} ms | {ratio:.2f} | "
            f"{run['non2xx']} / {run['socket_errors']} | {'met' if met else '**not met**'} |")


def table(runs, full=True):
    trivial = runs["trivial"]
    lines = ["| route | requests/s | p50 | p99 | vs `/style.css` | non-2xx / socket errors | target |",
             "|---|---|---|---|---|---|---|",
             f"| `GET /style.css` (trivial) | {trivial['rate']:,.0f} | {trivial['p50']:.1f} ms | {trivial['p99']:.1f} ms | 1.00 | "
             f"{trivial['non2xx']} / {trivial['socket_errors']} | — |",
             row("`POST /c/<slug>/sign`", runs["sign"], trivial, 2000, 100),
             row("`POST /confirm/<token>`", runs["confirm"], trivial, 2000, 100)]
    if full:
        lines += [row("`GET /c/<slug>` (petition page)", runs["petition"], trivial, 5000),
                  row("`GET /c/<slug>/count.json`", runs["count.json"], trivial, 5000)]
    return "\n".join(lines)


def main():
    for tool in ("/usr/bin/wrk", "/usr/sbin/smtp-sink"):
        if not os.path.exists(tool):
            sys.exit(f"bench: {tool} missing (scripts/setup with MUSTER_SETUP_BENCH=1 installs it)")
    load_start = os.getloadavg()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="muster-bench-serve-"))
    tmp.chmod(0o711)  # smtp-sink writes its dumps as nobody, into a folder inside
    try:
        print(f"bench: serve, {SECONDS} s per route at {CONNECTIONS} connections", file=sys.stderr)
        runs, checks = load_runs(MUSTER, tmp, "after")
        before = None
        if BEFORE:
            print(f"bench: serve, {BEFORE_LABEL} ({BEFORE})", file=sys.stderr)
            before = load_runs(pathlib.Path(BEFORE), tmp, "before", full=False)
        print(f"bench: serve, {MAILS:,} confirmation mails to smtp-sink", file=sys.stderr)
        mail = mail_run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    wrapped = max(0, runs["confirm"]["requests"] - checks["tokens"])
    before_text = ""
    if before:
        b_runs, b_checks = before
        before_text = f"""
The same trivial, sign and confirm runs against {BEFORE_LABEL} (`{pathlib.Path(BEFORE).name}`), on a fresh
workspace right after (one durable transaction per form and per confirmation):

{table(b_runs, full=False)}

Sign after / before: {runs['sign']['rate'] / b_runs['sign']['rate']:.2f}×; confirm after / before:
{runs['confirm']['rate'] / b_runs['confirm']['rate']:.2f}×. Peak RSS {b_checks['peak_rss']:.0f} MiB. Its confirm run had
{b_checks['tokens']:,} distinct tokens for {b_runs['confirm']['requests']:,} presses (a repeated press changes nothing and costs less).
"""
    mail_ok = mail["delivered"] == MAILS and mail["missing"] == 0
    section = f"""<!-- bench:serve -->
## The sign page under load (`muster serve`)

Measured {datetime.date.today().isoformat()} by `BENCH_ONLY=serve make bench` (scripts/bench_serve.py,
`BENCH_SERVE_SECONDS={SECONDS}`), release build, on {os.cpu_count()} cores with a load average of
{load_start[0]:.2f} at the start and {os.getloadavg()[0]:.2f} at the end (other processes share the machine). `wrk -t{WRK_THREADS} -c{CONNECTIONS}
-d{SECONDS}s --latency` on loopback, one route after the other against one server (one campaign;
forms from distinct addresses at large providers and distinct clients through the trusted
proxy; no relay here, so each form's confirmation mail stays queued in the ledger). wrk runs
on the same two cores as the server.

{table(runs)}

Checks: {checks['stored']:,} forms stored pending with their mail queued ({checks['held']} held) for
{runs['sign']['requests']:,} answered; {checks['confirmed']:,} signatures in the ledger after
{runs['confirm']['requests']:,} confirmations answered ({checks['tokens']:,} distinct tokens;
{wrapped:,} presses repeated a confirmed token); `muster verify` {'passes' if checks['verify'] else '**fails**'}.
Peak RSS of the server: {checks['peak_rss']:.0f} MiB (target < 200 MiB: {'met' if checks['peak_rss'] < 200 else '**not met**'}).
{before_text}
Confirmation mail: {MAILS:,} forms sent from 16 client threads in {mail['submit_seconds']:.1f} s, the server
relaying to Postfix's `smtp-sink` on loopback: {mail['delivered']:,} delivered ({mail['missing']} missing,
{mail['sent']:,} rows marked sent), the last {mail['drained']:.1f} s after the first form. From a form's
submission to its mail's arrival: p50 {mail['p50']:.2f} s, p95 {mail['p95']:.2f} s, max {mail['max']:.2f} s
(all delivered: {'met' if mail_ok else '**not met**'}).
<!-- /bench:serve -->"""
    write_section("serve", section)


if __name__ == "__main__":
    main()
