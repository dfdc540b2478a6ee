#!/usr/bin/env python3
"""Misbehaving HTTP clients for muster serve's tests (standard library only).

    http_client.py MODE PORT [PATH] [BODY]

Modes:
  trickle-head   send a request head one header line every 0.2 s, never ending it;
                 print "closed N" once the server closes the connection (N lines sent)
  trickle-body   send a POST head announcing 100,000 bytes, then one byte every 0.2 s;
                 print "closed N" once the server closes it
  endless-body   send a POST head announcing 1 GiB, then 64 KiB chunks as fast as the
                 server takes them; print "closed N" (bytes of body sent) once it
                 closes, or "sent N" after 64 MiB
  split-post     send the head of a POST of BODY (form-encoded) with
                 "Expect: 100-continue", wait for the server's "100 Continue" (proof it
                 has read the head: the request is in flight), send the first half of
                 the body, print "sent", wait for a line on stdin, send the rest and
                 print the final response's status line (or "no 100 continue: LINE")
  post-many      POST each line of the file PATH ("<path> TAB <form body>") from 16
                 threads; print "ok N" for each 200 answer (N: the line's index) as it
                 comes, "failed N" for any other outcome, then "done"; with BODY, a 200
                 answer is "ok" only when its page contains that text
Each gives up after 120 s (a safety net) and prints "timeout".
"""
import http.client
import threading
import socket
import sys
import time


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    return s


def closed(s):
    """True once the peer closed (or reset) the connection."""
    try:
        s.setblocking(False)
        data = s.recv(65536)
        return data == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.setblocking(True)


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    path = sys.argv[3] if len(sys.argv) > 3 else "/healthz"
    deadline = time.monotonic() + 120
    if mode == "post-many":
        post_many(port, path, sys.argv[4] if len(sys.argv) > 4 else None)
        return
    s = connect(port)
    if mode == "trickle-head":
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
        n = 0
        while time.monotonic() < deadline:
            try:
                s.sendall(f"X-Slow-{n}: a\r\n".encode())
            except OSError:
                print("closed", n); return
            n += 1
            time.sleep(0.2)
            if closed(s):
                print("closed", n); return
    elif mode == "trickle-body":
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                  f"Content-Length: 100000\r\n\r\n".encode())
        n = 0
        while time.monotonic() < deadline:
            try:
                s.sendall(b"a")
            except OSError:
                print("closed", n); return
            n += 1
            time.sleep(0.2)
            if closed(s):
                print("closed", n); return
    elif mode == "endless-body":
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {1 << 30}\r\n\r\n".encode())
        chunk, n = b"a" * 65536, 0
        while time.monotonic() < deadline and n < 64 << 20:
            try:
                s.sendall(chunk)
            except OSError:
                print("closed", n); return
            n += len(chunk)
        print("sent", n); return
    elif mode == "split-post":
        body = sys.argv[4].encode()
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                  f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n".encode())
        response = b""
        while b"\r\n\r\n" not in response:
            data = s.recv(65536)
            if not data:
                break
            response += data
        interim, _, response = response.partition(b"\r\n\r\n")
        if not interim.startswith(b"HTTP/1.1 100"):
            print("no 100 continue:", interim.split(b"\r\n", 1)[0].decode() or "closed", flush=True); return
        s.sendall(body[: len(body) // 2])
        print("sent", flush=True)
        sys.stdin.readline()
        s.sendall(body[len(body) // 2:])
        while b"\r\n" not in response:
            data = s.recv(65536)
            if not data:
                break
            response += data
        print(response.split(b"\r\n", 1)[0].decode() or "no response"); return
    print("timeout")


def post_many(port, listing, expected=None):
    with open(listing, encoding="utf-8") as f:
        jobs = [tuple(line.rstrip("\n").split("\t", 1)) for line in f if line.strip()]
    lock, next_job = threading.Lock(), [0]

    def worker():
        while True:
            with lock:
                index = next_job[0]
                next_job[0] += 1
            if index >= len(jobs):
                return
            path, body = jobs[index]
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                conn.request("POST", path, body=body.encode(), headers={"Content-Type": "application/x-www-form-urlencoded"})
                response = conn.getresponse()
                page = response.read().decode("utf-8", "replace")
                conn.close()
                outcome = "ok" if response.status == 200 and (expected is None or expected in page) else "failed"
            except Exception:
                outcome = "failed"
            with lock:
                print(outcome, index, flush=True)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("done", flush=True)


if __name__ == "__main__":
    main()
