#!/usr/bin/env python3
"""Transparency benchmarks (issue 14: checkpoints, receipts, the public log).

On a ledger of 1,000,000 signatures (BENCH_BIG): the migration that builds the Merkle
tree for a ledger of the format before it, `checkpoint` (which verifies the ledger
first), `receipt` (target under 50 ms), `verify --against` an old checkpoint,
`export --log`, and the reference verifier recounting that log.

What the tree adds, side by side with BENCH_BASELINE, a release build of the muster
before the tree (ledger format 3), when it is set: `muster import` of a 1,000,000-row
CSV into a new campaign (the bulk path; target under 10 % added) and `muster sign` on
the 1,000,000-signature ledger (target under 1 ms added), in interleaved rounds
(BENCH_ROUNDS, default 5; the order alternates) so that a busy moment on the shared
machine hits both alike. Build the baseline from a checkout of that commit:

    git archive COMMIT | tar -x -C /tmp/base && (cd /tmp/base && swift build -c release --product muster)
    BENCH_BASELINE=/tmp/base/.build/release/muster BENCH_ONLY=transparency make bench

BENCH_PART=compare runs the side-by-side part alone (it still fills the ledger). It goes
into its own section (<!-- bench:transparency-cost -->), with the minimum of the runs
beside the median: on a shared machine the least disturbed run is the fairer figure.

Writes the figures into BENCHMARKS.md between <!-- bench:transparency --> markers.
Wall times are medians of several runs on a shared machine: compare the ratios.
"""
import datetime, os, pathlib, platform, shutil, sqlite3, statistics, subprocess, sys, tempfile, time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from benchlib import measure, write_section  # noqa: E402
MUSTER = ROOT / ".build/release/muster"
FIXTURE = ROOT / ".build/release/muster-fixture"
VERIFIER = ROOT / "scripts/muster_verify.py"
BIG = int(os.environ.get("BENCH_BIG", "1000000"))
RUNS = 5
BASELINE = os.environ.get("BENCH_BASELINE")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SIGNS = int(os.environ.get("BENCH_SIGNS", "40"))
PART = os.environ.get("BENCH_PART", "all")


def timed(args, cwd, env=None):
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"bench: {args} failed: {done.stderr.decode()[:400]}")
    return time.perf_counter() - start


def median(args, cwd, env=None, runs=RUNS):
    return statistics.median(timed(args, cwd, env) for _ in range(runs))


def run_usage(args, cwd):
    """Wall time and CPU time (user + system) of one run (benchlib.measure)."""
    return measure(args, cwd)[:2]


def side_by_side(tmp, ledger):
    """Import and sign with BASELINE and with this muster, interleaved; returns the
    table rows. `ledger` is this muster's 1,000,000-signature ledger (format 4)."""
    from bench_import import generate
    binaries = {"before": pathlib.Path(BASELINE), "tree": MUSTER}
    csv_path = tmp / "import.csv"
    print(f"bench: generating {BIG:,} rows to import", file=sys.stderr)
    generate(csv_path, BIG)
    imports = {name: [] for name in binaries}
    for round in range(ROUNDS):
        order = list(binaries) if round % 2 == 0 else list(reversed(list(binaries)))
        print(f"bench: import round {round + 1} of {ROUNDS} ({', '.join(order)})", file=sys.stderr)
        for name in order:
            ws = tmp / f"import-{name}"
            shutil.rmtree(ws, ignore_errors=True)
            subprocess.run([binaries[name], "init", ws], check=True, capture_output=True)
            subprocess.run([binaries[name], "new", "bench", "--goal", str(BIG)], cwd=ws, check=True, capture_output=True)
            imports[name].append(run_usage([binaries[name], "import", csv_path, "--rejects", tmp / "rejects.csv"], ws))
        shutil.rmtree(tmp / "import-before", ignore_errors=True)
        shutil.rmtree(tmp / "import-tree", ignore_errors=True)

    # sign: the baseline on a copy of the ledger without its tree (format 3), this muster
    # on the ledger as it is; each run a new signer.
    workspaces = {}
    for name in binaries:
        ws = tmp / f"sign-{name}"
        shutil.copytree(ledger.parent.parent.parent, ws)
        workspaces[name] = ws
    db = sqlite3.connect(workspaces["before"] / "campaigns/bench/ledger.sqlite")
    db.execute("DROP TABLE merkle_nodes")
    db.execute("DELETE FROM migrations WHERE version >= 4")
    db.execute("UPDATE meta SET value = 3 WHERE key = 'schema_version'")
    db.commit()
    db.close()
    signs = {name: [] for name in binaries}
    print(f"bench: sign, {SIGNS} runs each, interleaved", file=sys.stderr)
    for i in range(SIGNS):
        order = list(binaries) if i % 2 == 0 else list(reversed(list(binaries)))
        for name in order:
            signs[name].append(run_usage([binaries[name], "sign", "--name", f"Side {i}", "--email", f"side{i}@bench.example",
                                          "--field", "region=Lyon"], workspaces[name]))
    for ws in workspaces.values():
        shutil.rmtree(ws, ignore_errors=True)

    def stats(runs, which, scale):
        values = [run[which] * scale for run in runs]
        return min(values), statistics.median(values)
    rows = []
    for label, runs, unit in ((f"`muster import` of {BIG:,} new rows (bulk path; {ROUNDS} rounds)", imports, "s"),
                              (f"`muster sign` on {BIG:,} signatures ({SIGNS} runs each)", signs, "ms")):
        scale, fmt = (1, lambda v: f"{v:.2f} s") if unit == "s" else (1000, lambda v: f"{v:.1f} ms")
        cells = []
        for which, kind in ((0, "wall"), (1, "CPU")):
            (b_min, b_med), (t_min, t_med) = stats(runs["before"], which, scale), stats(runs["tree"], which, scale)
            if unit == "s":
                added = f"{100 * (t_min / b_min - 1):+.1f} % ({100 * (t_med / b_med - 1):+.1f} %)"
            else:
                added = f"{t_min - b_min:+.2f} ms ({t_med - b_med:+.2f} ms)"
            cells.append(f"| {label}, {kind} | {fmt(b_min)} ({fmt(b_med)}) | {fmt(t_min)} ({fmt(t_med)}) | {added} |")
        rows += cells
    spread = "; ".join(f"{name}: " + ", ".join(f"{w:.1f}/{c:.1f}" for w, c in runs) for name, runs in imports.items())
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    load = os.getloadavg()[0]
    return f"""<!-- bench:transparency-cost -->
### What the tree adds to import and sign

Measured {datetime.date.today().isoformat()} by `BENCH_BASELINE=… BENCH_PART=compare BENCH_ONLY=transparency make bench`
(scripts/bench_transparency.py) on {os.cpu_count()} cores ({cpu}), load average {load:.1f} when it ended: release
builds of this muster and of the one before the tree (ledger format 3), run in turn, the order alternating. Minimum
of the runs, median in brackets.

| what | before the tree | with the tree | added |
|---|---|---|---|
{chr(10).join(rows)}

Import per round, wall/CPU seconds: {spread}.
<!-- /bench:transparency-cost -->"""


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
        if PART == "compare":
            if not BASELINE:
                raise SystemExit("bench: BENCH_PART=compare needs BENCH_BASELINE")
            write_section("transparency-cost", side_by_side(tmp, ledger))
            return

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
        if BASELINE:
            write_section("transparency-cost", side_by_side(tmp, ledger))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
