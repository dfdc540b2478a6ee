#!/usr/bin/env python3
"""Start-up benchmark: the statically linked release build (the one scripts/package ships,
`--static-swift-stdlib`, .build-static/) against the dynamically linked one (.build/).

- `muster --version`: process start-up alone (loader, Swift runtime, argument parsing).
- `muster sign` on a ledger of 100,000 signatures (start-up plus validate, dedupe, hash,
  durable commit), both binaries signing into the same ledger.

Both binaries are copied and stripped as the package strips its binary, so only the
linking differs. Runs are interleaved (each round runs all four, in an order that
alternates between rounds) so that load from other processes hits both builds alike;
the machine is shared, so the ratios are the result, not the absolute times.

Writes the figures into BENCHMARKS.md between <!-- bench:startup --> markers.
"""
import datetime, os, pathlib, platform, shutil, statistics, subprocess, sys, tempfile, time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from benchlib import write_section  # noqa: E402
DYNAMIC = ROOT / ".build/release/muster"
STATIC = ROOT / ".build-static/release/muster"
FIXTURE = ROOT / ".build/release/muster-fixture"
ROUNDS = int(os.environ.get("BENCH_STARTUP_RUNS", "60"))


def timed(args, cwd):
    """Runs a command; returns (seconds, stdout)."""
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(map(str, args))} failed ({proc.returncode}): {proc.stderr.decode()}")
    return elapsed, proc.stdout


def linked_swift_libraries(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    return [l.split()[0] for l in out.splitlines() if "swift" in l or "Foundation" in l or "dispatch" in l]


def ms(seconds):
    return f"{seconds * 1000:.1f} ms"


def main():
    for path in (DYNAMIC, STATIC, FIXTURE):
        if not path.exists():
            sys.exit(f"bench: {path} is missing (scripts/bench builds it)")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="muster-bench-startup-"))
    try:
        builds = {}
        for name, src in (("static", STATIC), ("dynamic", DYNAMIC)):
            dst = tmp / f"muster-{name}"
            shutil.copy2(src, dst)
            subprocess.run(["strip", "--strip-unneeded", dst], check=True)
            builds[name] = dst
        if linked_swift_libraries(builds["static"]):
            sys.exit(f"bench: {STATIC} links Swift libraries dynamically: {linked_swift_libraries(builds['static'])}")
        dynamic_libs = linked_swift_libraries(builds["dynamic"])

        ws = tmp / "ws"
        subprocess.run([builds["dynamic"], "init", ws], check=True, capture_output=True)
        subprocess.run([builds["dynamic"], "new", "bench", "--goal", "1000000"], cwd=ws, check=True, capture_output=True)
        print("bench: filling a ledger with 100,000 signatures", file=sys.stderr)
        subprocess.run([FIXTURE, ws, "bench", "100000"], check=True, capture_output=True)

        times = {(b, c): [] for b in builds for c in ("version", "sign")}
        for i in range(ROUNDS):
            order = ["static", "dynamic"] if i % 2 == 0 else ["dynamic", "static"]
            for b in order:
                times[(b, "version")].append(timed([builds[b], "--version"], ws)[0])
            for b in order:
                t, out = timed([builds[b], "sign", "--name", f"Bench Person {b} {i}", "--email", f"{b}{i}@bench.example", "--field", "region=Lyon"], ws)
                assert b"added" in out, out
                times[(b, "sign")].append(t)
        med = {k: statistics.median(v) for k, v in times.items()}
        p90 = {k: statistics.quantiles(v, n=10)[-1] for k, v in times.items()}
        size = {b: builds[b].stat().st_size / 2**20 for b in builds}
        # Peak memory of one `--version`, the smallest whole run.
        rss = {}
        for b in builds:
            pid = os.fork()
            if pid == 0:
                fd = os.open(os.devnull, os.O_WRONLY)
                os.dup2(fd, 1)
                os.execv(str(builds[b]), [str(builds[b]), "--version"])
            _, _, usage = os.wait4(pid, 0)
            rss[b] = usage.ru_maxrss / 1024

        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
        load = os.getloadavg()[0]
        section = f"""<!-- bench:startup -->
## Start-up: the static build (what the package ships) against the dynamic one

Measured {datetime.date.today().isoformat()} by `BENCH_ONLY=startup make bench` (scripts/bench_startup.py) on {os.cpu_count()} cores
({cpu}), {platform.system()} {platform.release()}, load average {load:.1f} when it ended. Both are
release builds of the same commit, stripped: *static* is `swift build -c release --static-swift-stdlib`
(the Swift runtime, Foundation and Dispatch linked in; it loads only the C libraries), *dynamic* is
`swift build -c release` (it loads {len(dynamic_libs)} Swift libraries from the toolchain). {ROUNDS} rounds,
each running all four commands, alternating which build goes first; the machine is shared and was
busy, so absolute times move between runs: read the ratios.

| command | static: median | p90 | dynamic: median | p90 | static / dynamic |
|---|---|---|---|---|---|
| `muster --version` (process start-up alone) | {ms(med[("static", "version")])} | {ms(p90[("static", "version")])} | {ms(med[("dynamic", "version")])} | {ms(p90[("dynamic", "version")])} | {med[("static", "version")] / med[("dynamic", "version")]:.2f}× |
| `muster sign --name … --email … --field region=Lyon` on 100,000 signatures | {ms(med[("static", "sign")])} | {ms(p90[("static", "sign")])} | {ms(med[("dynamic", "sign")])} | {ms(p90[("dynamic", "sign")])} | {med[("static", "sign")] / med[("dynamic", "sign")]:.2f}× |

Start-up is {med[("static", "version")] / med[("static", "sign")]:.0%} of `sign` for the static build and {med[("dynamic", "version")] / med[("dynamic", "sign")]:.0%} for the dynamic one.
Binary size: {size["static"]:.1f} MiB static, {size["dynamic"]:.1f} MiB dynamic (plus the toolchain's libraries);
peak memory of `muster --version`: {rss["static"]:.0f} MiB static, {rss["dynamic"]:.0f} MiB dynamic.
<!-- /bench:startup -->"""
        write_section("startup", section)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
