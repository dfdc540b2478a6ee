#!/usr/bin/env python3
"""What one-person-one-signature costs an import (issue 15), side by side.

Builds the muster of BENCH_BASE_REV (default: the last commit before mailbox keys and
libidn2, 5f342ac) in release mode into ~/.cache/muster/bench-base-<rev>/ (once; later
runs reuse it), then imports the same generated 1,000,000-row file (scripts/bench_import.py's
generator: 5% repeated addresses in other letter case, 1% invalid) into a new campaign
with that build and with this one, in interleaved rounds so a busy moment on the shared
machine hits both alike. Reports the medians and their ratio, and writes them into
BENCHMARKS.md between <!-- bench:identity --> markers.
"""
import datetime, json, os, pathlib, platform, shutil, subprocess, sys, tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from benchlib import measure, write_section  # noqa: E402
from bench_import import generate  # noqa: E402

# The build to measure: this checkout's release build, or BENCH_MUSTER (for example the
# build just before another change, to measure this one alone).
MUSTER = pathlib.Path(os.environ.get("BENCH_MUSTER", ROOT / ".build/release/muster"))
THIS = os.environ.get("BENCH_THIS_LABEL", "this build")
BASE_REV = os.environ.get("BENCH_BASE_REV", "5f342ac")
ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "1000000"))
RUNS = int(os.environ.get("BENCH_IDENTITY_RUNS", "5"))
VARIANT_RUNS = int(os.environ.get("BENCH_IDENTITY_VARIANT_RUNS", "3"))


def generate_variants(source, path):
    """The same file with every fifth address a new Gmail signer spelled with a dot and a
    +tag (`person.N+news@gmail.com`): each is its own person, but not its own mailbox, so
    each gets a key row — the case that costs this build most."""
    with open(source, encoding="utf-8") as src, open(path, "w", encoding="utf-8", newline="") as out:
        out.write(src.readline())
        for i, line in enumerate(src):
            first, last, email, rest = line.split(",", 3)
            if i % 5 == 0 and "@bench.example" in email:
                email = email.replace("signer", "signer.x").replace("@bench.example", "+news@gmail.com")
            out.write(",".join([first, last, email, rest]))


def base_build():
    """The release binary of BASE_REV, built once in a cache folder outside the repository."""
    rev = subprocess.run(["git", "rev-parse", "--short=12", BASE_REV], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "muster" / f"bench-base-{rev}"
    binary = cache / ".build/release/muster"
    if binary.exists():
        return rev, binary
    print(f"bench: building muster {rev} (the previous build) in {cache}", file=sys.stderr)
    if cache.exists():
        shutil.rmtree(cache)
    cache.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "worktree", "add", "--detach", "--force", cache, rev], cwd=ROOT, check=True, capture_output=True)
    try:
        subprocess.run(["swift", "build", "-c", "release", "--product", "muster"], cwd=cache, check=True)
    finally:
        # Keep the build, drop the worktree's registration (the folder stays as a cache).
        subprocess.run(["git", "worktree", "prune"], cwd=ROOT, capture_output=True)
    return rev, binary


def workspace(binary, path):
    subprocess.run([binary, "init", path], check=True, capture_output=True)
    subprocess.run([binary, "new", "bench", "--goal", str(ROWS)], cwd=path, check=True, capture_output=True)


def count_of(binary, ws):
    out = subprocess.run([binary, "verify", "--json"], cwd=ws, capture_output=True, text=True, check=True).stdout
    return json.loads(out)["count"]


def main():
    rev, base = base_build()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="muster-bench-identity-"))
    try:
        csv_path = tmp / "signatures.csv"
        print(f"bench: generating {ROWS:,} rows", file=sys.stderr)
        generate(csv_path, ROWS)
        variant_path = tmp / "variants.csv"
        generate_variants(csv_path, variant_path)
        binaries = {"base": base, "this": MUSTER}

        def rounds(path, count, label):
            runs = {"base": [], "this": []}
            counts = {}
            for round in range(count):
                # Alternate which goes first, so neither always gets the warmer page cache.
                order = ["base", "this"] if round % 2 == 0 else ["this", "base"]
                print(f"bench: {label}, round {round + 1} of {count}: {' then '.join(order)}", file=sys.stderr)
                for name in order:
                    ws = tmp / f"ws-{name}"
                    shutil.rmtree(ws, ignore_errors=True)
                    workspace(binaries[name], ws)
                    runs[name].append(measure([binaries[name], "import", path], cwd=ws))
                    print(f"bench:   {name}: {runs[name][-1][0]:.2f} s wall, {runs[name][-1][1]:.2f} s CPU", file=sys.stderr)
                    counts[name] = count_of(binaries[name], ws)
            return runs, counts

        runs, counts = rounds(csv_path, RUNS, "plain addresses")
        vruns, vcounts = rounds(variant_path, VARIANT_RUNS, "a fifth Gmail dots and tags")
        variant_rows = int(subprocess.run(["sqlite3", tmp / "ws-this/campaigns/bench/ledger.sqlite", "SELECT count(*) FROM mailbox_keys"],
                                          capture_output=True, text=True, check=True).stdout)
        med = lambda values: sorted(values)[len(values) // 2]

        def summary(runs):
            wall = {n: med([r[0] for r in runs[n]]) for n in runs}
            cpu_time = {n: med([r[1] for r in runs[n]]) for n in runs}
            peak = {n: max(r[2] for r in runs[n]) for n in runs}
            spread = {n: f"{min(r[0] for r in runs[n]):.1f}–{max(r[0] for r in runs[n]):.1f} s" for n in runs}
            return wall, cpu_time, peak, spread

        wall, cpu_time, peak, spread = summary(runs)
        vwall, vcpu, vpeak, vspread = summary(vruns)
        load = os.getloadavg()[0]
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
        section = f"""<!-- bench:identity -->
## One person, one signature: what mailbox keys and libidn2 cost an import

Measured {datetime.date.today().isoformat()} by `BENCH_ONLY=identity make bench` (scripts/bench_identity.py) on {os.cpu_count()} cores ({cpu}),
release builds, {platform.system()} {platform.release()}. Interleaved rounds (the order alternating), each importing
a {ROWS:,}-row file into a new campaign: the previous build ({rev}: the canonical address only, a
hand-written punycode) and {THIS} (libidn2, a mailbox key per row). Load average at the end: {load:.1f} on 2 cores.

| file | build | median wall time | runs | median CPU time (user + sys) | peak memory | signatures |
|---|---|---|---|---|---|---|
| scripts/bench_import.py's ({RUNS} rounds: 5% repeated addresses, 1% invalid) | previous | {wall["base"]:.2f} s | {spread["base"]} | {cpu_time["base"]:.2f} s | {peak["base"]:.0f} MiB | {counts["base"]:,} |
| | this | {wall["this"]:.2f} s | {spread["this"]} | {cpu_time["this"]:.2f} s | {peak["this"]:.0f} MiB | {counts["this"]:,} |
| the same, every fifth address `signer.xN+news@gmail.com` ({VARIANT_RUNS} rounds) | previous | {vwall["base"]:.2f} s | {vspread["base"]} | {vcpu["base"]:.2f} s | {vpeak["base"]:.0f} MiB | {vcounts["base"]:,} |
| | this ({variant_rows:,} key rows) | {vwall["this"]:.2f} s | {vspread["this"]} | {vcpu["this"]:.2f} s | {vpeak["this"]:.0f} MiB | {vcounts["this"]:,} |

Plain addresses: this build takes **{wall["this"] / wall["base"]:.2f}×** the previous one's median wall time and
{cpu_time["this"] / cpu_time["base"]:.2f}× its CPU time. A fifth variants: {vwall["this"] / vwall["base"]:.2f}× and {vcpu["this"] / vcpu["base"]:.2f}×.
Target: at most 1.10×. An address that is its own mailbox (most) needs no key row — its key is
its fingerprint's start — so the plain file writes none; each variant writes one row and one index entry.
Both builds share the 2 cores with whatever else runs: the times move between runs, the
ratios of interleaved runs much less.
<!-- /bench:identity -->"""
        write_section("identity", section)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
