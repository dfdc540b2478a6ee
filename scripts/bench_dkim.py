#!/usr/bin/env python3
"""What DKIM signing by muster costs a blast (issue 13), side by side.

The same 10,000-signer workspace (scripts/bench_mail.py's) sent to Postfix's smtp-sink on
loopback, unsigned, signed with Ed25519 and signed with RSA-2048 (keys made with openssl,
outside the workspace), in interleaved rounds. Writes the medians and ratios into
BENCHMARKS.md between <!-- bench:dkim --> markers.
"""
import datetime, os, pathlib, shutil, statistics, subprocess, sys, tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from benchlib import write_section  # noqa: E402
from bench_mail import MUSTER, N, start_sink, run_timed, workspace  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_DKIM_ROUNDS", "3"))


def main():
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="muster-bench-dkim-"))
    sink, port = start_sink()
    try:
        keys = tmp / "keys"
        keys.mkdir()
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", keys / "ed25519.pem"], check=True, capture_output=True)
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", keys / "rsa.pem"], check=True, capture_output=True)
        for key in keys.iterdir():
            key.chmod(0o600)
        print(f"bench: {N:,} signers", file=sys.stderr)
        ws = workspace(tmp, "ws", N, port)
        settings = (ws / "muster.yaml").read_text()
        env = dict(os.environ, MUSTER_SMTP_URL=f"smtp://127.0.0.1:{port}")
        variants = {"unsigned": None, "ed25519-sha256": keys / "ed25519.pem", "rsa-sha256 (2048 bits)": keys / "rsa.pem"}
        runs = {name: [] for name in variants}
        for round_ in range(ROUNDS):
            print(f"bench: round {round_ + 1} of {ROUNDS}", file=sys.stderr)
            for name, key in variants.items():
                fresh = tmp / f"ws-{round_}"
                shutil.copytree(ws, fresh)  # an outbox with nothing sent yet
                extra = f"dkim:\n  selector: bench\n  key: {key}\n" if key else ""
                (fresh / "muster.yaml").write_text(settings + extra)
                runs[name].append(run_timed([MUSTER, "mail", "send", "thanks", "--yes", "--connections", "8"], fresh, env))
                status = subprocess.run([MUSTER, "mail", "status", "thanks", "--json"], cwd=fresh, capture_output=True, text=True).stdout
                assert f'"sent":{N}' in status, status
                shutil.rmtree(fresh)
                print(f"bench:   {name}: {runs[name][-1][0]:.2f} s", file=sys.stderr)
        median = {name: statistics.median(t for t, _ in r) for name, r in runs.items()}
        spread = {name: f"{min(t for t, _ in r):.2f}–{max(t for t, _ in r):.2f} s" for name, r in runs.items()}
        base = median["unsigned"]
        rows = "\n".join(f"| {name} | {median[name]:.2f} s | {spread[name]} | {N / median[name]:,.0f} | {median[name] / base:.2f}× |" for name in variants)
        section = f"""<!-- bench:dkim -->
## Mail: what DKIM signing by muster costs a blast

Measured {datetime.date.today().isoformat()} by `BENCH_ONLY=dkim make bench` (scripts/bench_dkim.py), release build,
against Postfix's `smtp-sink` on loopback: {ROUNDS} rounds, each sending the same {N:,} personalised messages
(`mail send thanks --yes --connections 8`) unsigned, then signed with each key; medians.

| signing | wall time (median) | runs | messages/s | vs unsigned |
|---|---|---|---|---|
{rows}

Target: signing adds under 10%. 2 shared cores: read the ratios, not the times.
<!-- /bench:dkim -->"""
        write_section("dkim", section)
    finally:
        sink.terminate()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
