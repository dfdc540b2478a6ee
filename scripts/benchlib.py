"""Shared by the bench_*.py scripts: timing one run, writing one section of BENCHMARKS.md,
starting a local SMTP sink."""
import os
import pathlib
import re
import socket
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEADER = "# Benchmarks\n\nEvery figure here was written by `make bench`; rerun it to refresh them.\n\n"


def write_section(name, section):
    """Puts `section` (which starts and ends with its <!-- bench:NAME --> markers) into
    BENCHMARKS.md, replacing the previous one or appending it, and prints it."""
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else HEADER
    pattern = rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->"
    if re.search(pattern, text, flags=re.S):
        text = re.sub(pattern, lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)
    print(section)


def run_silent(args, cwd=None, env=None, keep_stderr=False, stdout=None):
    """Runs a command with its output discarded (its error output too, unless keep_stderr;
    its standard output written to the file `stdout` when given) and returns (wall seconds,
    its rusage); exits the benchmark when the command fails."""
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        if cwd:
            os.chdir(cwd)
        fd = os.open(os.devnull, os.O_WRONLY)
        out = os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600) if stdout else fd
        os.dup2(out, 1)
        if not keep_stderr:
            os.dup2(fd, 2)
        os.execvpe(str(args[0]), [str(a) for a in args], env or os.environ)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"bench: {' '.join(map(str, args))} exited with {status >> 8}")
    return elapsed, usage


def measure(args, cwd=None, stdout=None):
    """Runs `args` (output discarded, or its stdout written to the file `stdout`) and
    returns its wall time and CPU time (user + system, all threads) in seconds and its
    peak memory in MiB; exits on failure."""
    elapsed, usage = run_silent(args, cwd, stdout=stdout)
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def free_port():
    """A TCP port free on 127.0.0.1 (free when asked: bind it soon)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sink(dump=None):
    """Starts Postfix's smtp-sink on a free loopback port (as nobody, 256 connections at
    most) and waits until it accepts; returns (the process, its port). With `dump` (a
    folder that must not exist yet), it is created writable by all and the sink writes
    every message it receives there (`-d`). Exits the benchmark when the sink does not
    start."""
    options = []
    if dump is not None:
        dump.mkdir()
        dump.chmod(0o777)
        options = ["-d", f"{dump}/%H%M%S."]
    port = free_port()
    sink = subprocess.Popen(["/usr/sbin/smtp-sink", "-u", "nobody", *options, f"127.0.0.1:{port}", "256"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return sink, port
        except OSError:
            time.sleep(0.05)
    sys.exit("bench: smtp-sink did not start")
