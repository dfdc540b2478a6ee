#!/usr/bin/env python3
"""Transparency benchmarks (issue 14: checkpoints, receipts, the public log).

On a ledger of 1,000,000 signatures (BENCH_BIG): the migration that builds the Merkle
tree for a ledger of the format before it, `checkpoint` (which verifies the ledger
first), `receipt` (target under 50 ms), `verify --against` an old checkpoint,
`export --log`, and the reference verifier recounting that log.

Writes the figures into BENCHMARKS.md between <!-- bench:transparency --> markers.
Wall times are medians of several runs on a shared machine: compare the ratios.
"""
import datetime, os, pathlib, platform, shutil, sqlite3, statistics, subprocess, sys, tempfile, time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from benchlib import write_section  # noqa: E402
MUSTER = ROOT / ".build/release/muster"
FIXTURE = ROOT / ".build/release/muster-fixture"
VERIFIER = ROOT / "scripts/muster_verify.py"
BIG = int(os.environ.get("BENCH_BIG", "1000000"))
RUNS = 5


def timed(args, cwd, env=None):
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"bench: {args} failed: {done.stderr.decode()[:400]}")
    return time.perf_counter() - start


def median(args, cwd, env=None, runs=RUNS):
    return statistics.median(timed(args, cwd, env) for _ in range(runs))


def main():
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="muster-bench-"))
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "config"))
    try:
        ws = tmp / "ws"
        subprocess.run([MUSTER, "init", ws], check=True, capture_output=True)
        subprocess.run([MUSTER, "new", "bench", "--goal", str(BIG)], cwd=ws, check=True, capture_output=True)
        print(f"bench: filling a ledger with {BIG:,} signatures", file=sys.stderr)
        subprocess.run([FIXTURE, ws, "bench", str(BIG)], check=True, capture_output=True)
        ledger = ws / "campaigns/bench/ledger.sqlite"

        # The migration: take the tree away (the ledger of format 3) and time opening it.
        db = sqlite3.connect(ledger)
        db.execute("DROP TABLE merkle_nodes")
        db.execute("DELETE FROM migrations WHERE version >= 4")
        db.execute("UPDATE meta SET value = 3 WHERE key = 'schema_version'")
        db.commit()
        db.close()
        subprocess.run(["sqlite3", ledger, "VACUUM"], check=True)
        migrate = timed([MUSTER, "list"], ws)
        plain_open = median([MUSTER, "list"], ws)

        first = median([MUSTER, "checkpoint"], ws, env, runs=1)
        for i in range(20):
            subprocess.run([MUSTER, "sign", "--name", f"Late {i}", "--email", f"late{i}@bench.example", "--field", "region=Lyon"],
                           cwd=ws, check=True, capture_output=True)
        checkpoint = median([MUSTER, "checkpoint"], ws, env, runs=1)
        receipt = median([MUSTER, "receipt", "signer12345@bench.example"], ws)
        version = median([MUSTER, "--version"], ws)
        verify = median([MUSTER, "verify"], ws, runs=3)
        against = median([MUSTER, "verify", "--against", str(BIG)], ws, runs=3)
        log = tmp / "log.jsonl"
        export = median([MUSTER, "export", "--log", "--out", log], ws, runs=1)
        note = sorted((ws / "campaigns/bench/checkpoints").glob("*.txt"), key=lambda p: int(p.stem))[-1]
        recount = median(["python3", VERIFIER, "log", log, "--checkpoint", note, "--key", ws / "campaigns/bench/checkpoint.vkey"],
                         ws, runs=1)
        rows = subprocess.run(["sqlite3", ledger, "SELECT count(*) FROM merkle_nodes"], capture_output=True, text=True).stdout.strip()

        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
        section = f"""<!-- bench:transparency -->
## Checkpoints, receipts and the public log

Measured {datetime.date.today().isoformat()} by `make bench` (scripts/bench_transparency.py) on {os.cpu_count()} cores ({cpu}),
release build, {platform.system()} {platform.release()}, on a ledger of {BIG:,} signatures. Medians.

| what | wall time |
|---|---|
| opening a format-3 ledger: migration 4 builds the tree ({rows} nodes) | {migrate:.2f} s |
| opening it again (`muster list`) | {plain_open * 1000:.0f} ms |
| `muster checkpoint`, first (makes the key; verifies the ledger first) | {first:.2f} s |
| `muster checkpoint` after 20 more signatures | {checkpoint:.2f} s |
| `muster receipt` (target under 50 ms) | {receipt * 1000:.0f} ms ({version * 1000:.0f} ms of it process start-up) |
| `muster verify` (chain and tree) | {verify:.2f} s |
| `muster verify --against` the checkpoint of {BIG:,} | {against:.2f} s |
| `muster export --log` | {export:.2f} s |
| `muster_verify.py log` (Python: recomputes every hash and the root, recounts) | {recount:.1f} s |
<!-- /bench:transparency -->"""
        write_section("transparency", section)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
