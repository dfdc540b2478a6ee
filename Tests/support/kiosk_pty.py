#!/usr/bin/env python3
"""Drives `muster sign --kiosk` in a real pseudo-terminal, as a person at a stall would.

Reads a JSON script on stdin:
  {"binary": PATH, "args": [...], "cwd": DIR, "steps": [STEP, ...]}
The kiosk runs under `sh -c`, as if typed at a shell prompt, so that the script can
tell whether anyone was dropped back into the shell. The shell prints the terminal
settings (`stty -g`) before and after, and the kiosk's exit status.

Steps:
  {"expect": TEXT}            wait (10 s) for TEXT in the output since the last match
  {"send": TEXT}              type TEXT (control characters included, e.g. "\u0003")
  {"send_hex": HEX}           type raw bytes
  {"sleep": SECONDS}
  {"alive": true}             the kiosk is still running (not suspended) and the shell has not come back
  {"signal": "TERM"}          send a signal to the kiosk from outside
  {"hangup": true}            close the terminal (the master side); wait for the kiosk to go
  {"end": true}               wait for the kiosk to end and the shell to report

Prints one JSON object: ok, error, failed_step, transcript (all output),
status (the kiosk's exit status as the shell saw it: 128+N for signal N),
stty_before, stty_after, kiosk_gone.
"""
import json
import os
import re
import signal
import sys
import time

import pexpect

SHELL = 'set -m; stty -g | sed "s/^/[stty-before] /"; "$@"; s=$?; echo "[shell] status=$s"; stty -g | sed "s/^/[stty-after] /"; echo "[shell] end"'


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def state(pid):
    """The process's state letter (R, S, T stopped, Z zombie…), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1].split()[0]
    except OSError:
        return None


def alive(pid):
    return state(pid) not in (None, "Z", "X")


def main():
    script = json.load(sys.stdin)
    env = dict(os.environ, TERM="xterm", NO_COLOR="1", LANG="C.UTF-8")
    child = pexpect.spawn("/bin/sh", ["-c", SHELL, "sh", script["binary"], *script["args"]],
                          cwd=script["cwd"], env=env, dimensions=(24, 80))
    result = {"ok": True, "error": None, "failed_step": None, "status": None,
              "stty_before": None, "stty_after": None, "kiosk_gone": None}
    transcript = bytearray()

    def pump(pattern, timeout):
        # Reads until `pattern` (bytes) shows up after `position`.
        nonlocal position
        end = time.time() + timeout
        while True:
            found = transcript.find(pattern, position)
            if found >= 0:
                position = found + len(pattern)
                return True
            if time.time() > end:
                return False
            try:
                transcript.extend(child.read_nonblocking(4096, timeout=0.1))
            except pexpect.TIMEOUT:
                pass
            except pexpect.EOF:
                found = transcript.find(pattern, position)
                if found >= 0:
                    position = found + len(pattern)
                    return True
                return False

    binary = os.path.realpath(script["binary"])

    def kiosk_pid():
        # The shell's child running the binary itself (not a fork of the shell that has not exec'd yet).
        end = time.time() + 10
        while time.time() < end:
            for pid in children(child.pid):
                try:
                    if os.path.realpath(f"/proc/{pid}/exe") == binary:
                        return pid
                except OSError:
                    pass
            time.sleep(0.05)
        return None

    position = 0
    pid = None
    for index, step in enumerate(script["steps"]):
        error = None
        if pid is None or not alive(pid):
            if any(key in step for key in ("alive", "signal", "hangup")) and b"[shell] status=" not in transcript:
                pid = kiosk_pid()
        if "expect" in step:
            if not pump(step["expect"].encode(), step.get("timeout", 10)):
                error = f"did not see {step['expect']!r}"
        elif "send" in step:
            child.send(step["send"].encode())
        elif "send_hex" in step:
            child.send(bytes.fromhex(step["send_hex"]))
        elif "sleep" in step:
            pump(b"\0never\0", step["sleep"])
        elif "alive" in step:
            pump(b"\0never\0", 0.3)
            if pid is None or not alive(pid):
                error = "the kiosk is not running"
            elif state(pid) in ("T", "t"):
                error = "the kiosk is suspended"
            elif b"[shell] status=" in transcript:
                error = "the shell came back"
        elif "signal" in step:
            if pid is None:
                error = "no kiosk process"
            else:
                try:
                    os.kill(pid, getattr(signal, "SIG" + step["signal"]))
                except ProcessLookupError:
                    error = "the kiosk had already ended"
        elif "hangup" in step:
            os.close(child.child_fd)
            child.child_fd = -1
            end = time.time() + 10
            while pid is not None and alive(pid) and time.time() < end:
                time.sleep(0.05)
            result["kiosk_gone"] = pid is not None and not alive(pid)
        elif "end" in step:
            if not pump(b"[shell] end", step.get("timeout", 10)):
                error = "the kiosk did not end"
        if error:
            result.update(ok=False, error=error, failed_step=index)
            break

    text = transcript.decode("utf-8", "replace")
    match = re.search(r"\[shell\] status=(\d+)", text)
    if match:
        result["status"] = int(match.group(1))
    for key in ("before", "after"):
        match = re.search(r"\[stty-%s\] (\S+)" % key, text)
        if match:
            result["stty_" + key] = match.group(1)
    result["transcript"] = text
    if child.child_fd != -1:
        child.close(force=True)
    if pid is not None and alive(pid):
        os.kill(pid, signal.SIGKILL)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
