#!/usr/bin/env python3
"""Foundation benchmarks (issue: workspace, campaigns, ledger).

- `muster sign` as a whole process on a ledger of 100,000 signatures, beside the
  floor it cannot beat: `muster --version` (process start alone) and the sqlite3 CLI
  doing one durable insert into a bare WAL table.
- `muster verify` and `muster report --json` on 1,000,000 signatures, with peak memory.

Writes the figures into BENCHMARKS.md between <!-- bench:foundation --> markers.
Wall times are medians of several runs on a shared machine: compare the ratios.
"""
import datetime, os, pathlib, platform, re, shutil, statistics, subprocess, sys, tempfile, time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from benchlib import run_silent, write_section  # noqa: E402
MUSTER = ROOT / ".build/release/muster"
FIXTURE = ROOT / ".build/release/muster-fixture"
SIGN_RUNS = int(os.environ.get("BENCH_SIGN_RUNS", "60"))
BIG = int(os.environ.get("BENCH_BIG", "1000000"))


def timed(args, cwd, env=None):
    """Runs a command; returns (seconds, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(map(str, args))} failed ({proc.returncode}): {err.decode()}")
    return elapsed, out


def peak_rss(args, cwd):
    """Runs a command alone (its error output shown) and returns (seconds, peak RSS MiB)."""
    elapsed, usage = run_silent(args, cwd, keep_stderr=True)
    return elapsed, usage.ru_maxrss / 1024


def ms(seconds):
    return f"{seconds * 1000:.1f} ms"


def main():
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="muster-bench-"))
    try:
        ws = tmp / "ws"
        subprocess.run([MUSTER, "init", ws], check=True, capture_output=True)
        subprocess.run([MUSTER, "new", "bench", "--goal", str(BIG)], cwd=ws, check=True, capture_output=True)
        print("bench: filling a ledger with 100,000 signatures", file=sys.stderr)
        subprocess.run([FIXTURE, ws, "bench", "100000"], check=True, capture_output=True)

        # 1. sign on a 100k ledger, interleaved with its floors so load hits all alike.
        sqlite_db = tmp / "bare.sqlite"
        subprocess.run(["sqlite3", sqlite_db, "PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, email TEXT UNIQUE);"], check=True, capture_output=True)
        sign, version, sqlite = [], [], []
        for i in range(SIGN_RUNS):
            t, out = timed([MUSTER, "sign", "--name", f"Bench Person {i}", "--email", f"new{i}@bench.example", "--field", "region=Lyon"], ws)
            assert b"added" in out, out
            sign.append(t)
            version.append(timed([MUSTER, "--version"], ws)[0])
            sqlite.append(timed(["sqlite3", sqlite_db, f"PRAGMA synchronous=FULL; INSERT INTO t (name, email) VALUES ('Bench Person {i}', 'new{i}@bench.example');"], ws)[0])
        sign_med, version_med, sqlite_med = map(statistics.median, (sign, version, sqlite))
        sign_p90 = statistics.quantiles(sign, n=10)[-1]

        # 2. verify and report on a 1M ledger.
        print(f"bench: growing the ledger to {BIG:,} signatures", file=sys.stderr)
        subprocess.run(["rm", "-f", ws / "campaigns/bench/ledger.sqlite"], check=True)
        grow_start = time.perf_counter()
        subprocess.run([FIXTURE, ws, "bench", str(BIG)], check=True, capture_output=True)
        grow = time.perf_counter() - grow_start
        verify_runs = [peak_rss([MUSTER, "verify"], ws) for _ in range(3)]
        report_runs = [peak_rss([MUSTER, "report", "--json"], ws) for _ in range(5)]
        count_ok = subprocess.run([MUSTER, "verify", "--json"], cwd=ws, capture_output=True, text=True).stdout
        assert f'"count":{BIG}' in count_ok, count_ok
        verify_med = statistics.median(t for t, _ in verify_runs)
        verify_mem = max(m for _, m in verify_runs)
        report_med = statistics.median(t for t, _ in report_runs)
        report_mem = max(m for _, m in report_runs)
        size = (ws / "campaigns/bench/ledger.sqlite").stat().st_size / 2**20

        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
        section = f"""<!-- bench:foundation -->
## Foundation: signing, verifying, reporting

Measured {datetime.date.today().isoformat()} by `make bench` (scripts/bench_foundation.py) on {os.cpu_count()} cores ({cpu}),
release build, {platform.system()} {platform.release()}. Medians; the machine is shared, so read the ratios.

### `muster sign` on a ledger of 100,000 signatures ({SIGN_RUNS} runs, each a new signer)

| command | median | p90 |
|---|---|---|
| `muster sign --name … --email … --field region=Lyon` (validate, dedupe, hash, durable commit) | {ms(sign_med)} | {ms(sign_p90)} |
| `muster --version` (process start-up alone) | {ms(version_med)} | |
| `sqlite3 bare.sqlite "INSERT …"` (one durable insert, no validation or chain) | {ms(sqlite_med)} | |

`sign` = {sign_med / version_med:.2f}× process start-up and {sign_med / sqlite_med:.2f}× the bare sqlite3 insert
(target: under 30 ms, dominated by process start).

### `muster verify` and `muster report --json` on {BIG:,} signatures

| command | median wall time | peak memory |
|---|---|---|
| `muster verify` (recompute {BIG:,} entry hashes and personal-data hashes) | {verify_med:.2f} s | {verify_mem:.0f} MiB |
| `muster report --json` | {ms(report_med)} | {report_mem:.0f} MiB |

Targets: under 2 s each. The ledger file is {size:.0f} MiB. Filling it with `muster-fixture`
(one transaction per 100,000 signatures, same validation and hashing as `sign`) took {grow:.1f} s
({BIG / grow:,.0f} signatures/s).
<!-- /bench:foundation -->"""
        write_section("foundation", section)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
