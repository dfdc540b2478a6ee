#!/usr/bin/env python3
"""Import benchmarks (issue 4: signatures in and out, reports).

On a generated 1,000,000-row CSV (invented @bench.example signers) with 5% duplicate
addresses and 1% bad rows, side by side:

- `muster import` (validate every row as `muster sign` does, dedupe, hash-chain,
  one transaction), with peak memory;
- `sqlite3 .import` of the same file into a bare table: the floor for getting rows
  into SQLite (no validation, no dedupe, no chain);
- a short Python csv + sqlite3 script doing comparable validation and dedupe (what a
  user would write instead of muster);

then `muster report --json` and `muster report --format html` on the resulting ledger.
Writes the figures into BENCHMARKS.md between <!-- bench:import --> markers.
"""
import datetime, os, pathlib, platform, random, re, shutil, subprocess, sys, tempfile, time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from benchlib import measure, write_section  # noqa: E402
MUSTER = ROOT / ".build/release/muster"
ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "1000000"))
RUNS = int(os.environ.get("BENCH_IMPORT_RUNS", "3"))

PYTHON_IMPORT = r'''
import csv, hashlib, hmac, json, os, re, sqlite3, sys, unicodedata
path, db = sys.argv[1], sys.argv[2]
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
REGIONS = {"Lyon", "Paris", "Marseille", "Lille", "Bordeaux"}
key = os.urandom(32)
con = sqlite3.connect(db)
con.executescript("PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS s (fingerprint TEXT UNIQUE, at TEXT, body TEXT, personal TEXT)")
added = dup = bad = 0
with open(path, newline="", encoding="utf-8-sig") as fh, con:
    for row in csv.DictReader(fh):
        name = unicodedata.normalize("NFC", f"{row['first_name']} {row['last_name']}".strip())
        email = unicodedata.normalize("NFC", row["email"].strip())
        if not name or not EMAIL.match(email) or row["region"] not in REGIONS:
            bad += 1
            continue
        fp = hmac.new(key, email.lower().encode(), hashlib.sha256).hexdigest()
        cur = con.execute("INSERT OR IGNORE INTO s VALUES (?, ?, ?, ?)", (fp, row["signed_at"],
            json.dumps({"fields": {"region": row["region"]}, "source": "import"}, sort_keys=True),
            json.dumps({"email": email, "name": name}, sort_keys=True)))
        if cur.rowcount: added += 1
        else: dup += 1
print(added, dup, bad)
'''


def generate(path, rows):
    rnd = random.Random(4)
    regions = ["Lyon", "Paris", "Marseille", "Lille", "Bordeaux"]
    start = datetime.datetime(2026, 9, 1)
    step = 80 * 86400 / rows
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("first_name,last_name,email,region,signed_at\n")
        for i in range(rows):
            at = (start + datetime.timedelta(seconds=int(i * step))).strftime("%Y-%m-%dT%H:%M:%SZ")
            r = rnd.random()
            if r < 0.05 and i > 100:
                j = rnd.randrange(i)  # an earlier address, in other case
                fh.write(f"Again{j},Signer,Signer{j}@Bench.example,{regions[j % 5]},{at}\n")
            elif r < 0.06:
                fh.write(f"Bad{i},Signer,signer{i}.bench.example,{regions[i % 5]},{at}\n")
            else:
                fh.write(f"Person{i},Signer,signer{i}@bench.example,{regions[i % 5]},{at}\n")


def timed_rss(args, cwd=None):
    """Wall time and peak memory of one run (benchlib.measure)."""
    wall, _, rss = measure(args, cwd)
    return wall, rss


def main():
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="muster-bench-import-"))
    try:
        csv_path = tmp / "signatures.csv"
        print(f"bench: generating {ROWS:,} rows", file=sys.stderr)
        generate(csv_path, ROWS)
        size = csv_path.stat().st_size / 2**20
        ws = tmp / "ws"
        subprocess.run([MUSTER, "init", ws], check=True, capture_output=True)
        subprocess.run([MUSTER, "new", "bench", "--goal", str(ROWS)], cwd=ws, check=True, capture_output=True)

        # Three rounds, each tool once per round, so a busy moment on the shared machine
        # hits them alike; medians are reported.
        muster_runs, sqlite_runs, python_runs = [], [], []
        script = tmp / "naive_import.py"
        script.write_text(PYTHON_IMPORT)
        for round in range(RUNS):
            print(f"bench: round {round + 1} of {RUNS}: muster import, sqlite3 .import, python", file=sys.stderr)
            for leftover in (ws / "campaigns/bench").glob("ledger.sqlite*"):
                leftover.unlink()
            muster_runs.append(timed_rss([MUSTER, "import", csv_path, "--rejects", tmp / "rejects.csv"], cwd=ws))
            bare = tmp / "bare.sqlite"
            for leftover in tmp.glob("bare.sqlite*"):
                leftover.unlink()
            subprocess.run(["sqlite3", bare, "PRAGMA journal_mode=WAL; CREATE TABLE t (first_name TEXT, last_name TEXT, email TEXT, region TEXT, signed_at TEXT);"], check=True, capture_output=True)
            sqlite_runs.append(timed_rss(["/usr/bin/sqlite3", bare, "-cmd", ".mode csv", "-cmd", f".import --skip 1 {csv_path} t", ".quit"]))
            for leftover in tmp.glob("python.sqlite*"):
                leftover.unlink()
            python_runs.append(timed_rss([sys.executable, script, csv_path, tmp / "python.sqlite"]))
        median = lambda runs: sorted(t for t, _ in runs)[len(runs) // 2]
        peak = lambda runs: max(m for _, m in runs)
        muster_time, muster_mem = median(muster_runs), peak(muster_runs)
        sqlite_time, sqlite_mem = median(sqlite_runs), peak(sqlite_runs)
        python_time, python_mem = median(python_runs), peak(python_runs)
        muster_range = f"{min(t for t, _ in muster_runs):.1f}–{max(t for t, _ in muster_runs):.1f} s"
        summary = subprocess.run([MUSTER, "verify", "--json"], cwd=ws, capture_output=True, text=True, check=True).stdout
        count = int(re.search(r'"count":(\d+)', summary).group(1))
        rejected = sum(1 for _ in open(tmp / "rejects.csv", encoding="utf-8")) - 1
        dry_time, _ = timed_rss([MUSTER, "import", csv_path, "--dry-run"], cwd=ws)
        python_out = f'{int(subprocess.run(["sqlite3", tmp / "python.sqlite", "SELECT count(*) FROM s"], capture_output=True, text=True).stdout.strip()):,}'

        print("bench: reports", file=sys.stderr)
        json_runs = [timed_rss([MUSTER, "report", "--json"], cwd=ws) for _ in range(3)]
        html_runs = [timed_rss([MUSTER, "report", "--format", "html", "--out", tmp / "r.html"], cwd=ws) for _ in range(3)]
        json_time = sorted(t for t, _ in json_runs)[1]
        html_time = sorted(t for t, _ in html_runs)[1]
        report_mem = max(m for _, m in json_runs + html_runs)

        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
        section = f"""<!-- bench:import -->
## Import and reports

Measured {datetime.date.today().isoformat()} by `make bench` (scripts/bench_import.py) on {os.cpu_count()} cores ({cpu}),
release build, {platform.system()} {platform.release()}. Medians of {RUNS} interleaved rounds; the 2 cores are
shared with whatever else runs, so read the ratios.

The file: {ROWS:,} generated rows ({size:.0f} MiB; first_name, last_name, email, region, signed_at),
about 5% repeating an earlier address in other letter case and 1% with an invalid address.

| what | wall time | rows/s | peak memory | result |
|---|---|---|---|---|
| `muster import` (validate as `sign` does, dedupe, hash-chain, one transaction; runs took {muster_range}) | {muster_time:.1f} s | {ROWS / muster_time:,.0f} | {muster_mem:.0f} MiB | {count:,} signatures, {rejected:,} rejected |
| the same `muster import --dry-run` again (every row now a duplicate or rejected; rolled back) | {dry_time:.1f} s | {ROWS / dry_time:,.0f} | | |
| `sqlite3 .import` into a bare table (no validation, dedupe or chain) | {sqlite_time:.1f} s | {ROWS / sqlite_time:,.0f} | {sqlite_mem:.0f} MiB | {ROWS:,} rows |
| Python `csv` + `sqlite3` (regex email check, NFC, HMAC dedupe, JSON; no chain) | {python_time:.1f} s | {ROWS / python_time:,.0f} | {python_mem:.0f} MiB | {python_out} rows |

`muster import` = {muster_time / sqlite_time:.1f}× the bare `sqlite3 .import` floor and {muster_time / python_time:.2f}× the Python script.
Targets: under 10 s and under 150 MB.

| on the {count:,}-signature ledger | median wall time | peak memory |
|---|---|---|
| `muster report --json` | {json_time * 1000:.0f} ms | {report_mem:.0f} MiB |
| `muster report --format html --out r.html` | {html_time * 1000:.0f} ms | |

Target: under 1 s.
<!-- /bench:import -->"""
        write_section("import", section)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
