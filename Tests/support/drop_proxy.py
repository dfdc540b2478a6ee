#!/usr/bin/env python3
"""A loopback TCP proxy that cuts a connection mid-stream, for muster's tests.

  drop_proxy.py --target PORT --cut-after BYTES [--connections N] [--refuse M]

Listens on a free 127.0.0.1 port (printed on stdout once listening) and forwards each
connection to 127.0.0.1:PORT. On the first N connections (default 1) it closes both
sides once BYTES bytes have come from the server: a mail server that drops the line in
the middle of a reply (under TLS too: it cuts the encrypted stream). The M connections
after those (default 0) are closed as soon as they are accepted, before any byte: a
server that stays unreachable for a while. Later connections pass through untouched.
Stops when its stdin closes.
"""
import argparse
import os
import socket
import sys
import threading


def pump(source, sink, budget, done):
    """Copies source to sink; with a budget, stops after that many bytes."""
    sent = 0
    try:
        while True:
            chunk = source.recv(65536)
            if not chunk:
                break
            if budget is not None and sent + len(chunk) >= budget:
                sink.sendall(chunk[: budget - sent])
                break
            sink.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass
    finally:
        done.set()


def handle(client, target, budget):
    try:
        server = socket.create_connection(("127.0.0.1", target))
    except OSError:
        client.close()
        return
    done = threading.Event()
    threading.Thread(target=pump, args=(client, server, None, done), daemon=True).start()
    threading.Thread(target=pump, args=(server, client, budget, done), daemon=True).start()
    done.wait()
    for s in (client, server):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", type=int, required=True)
    parser.add_argument("--cut-after", type=int, required=True)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--refuse", type=int, default=0)
    args = parser.parse_args()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(listener.getsockname()[1], flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    count = 0
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            break
        count += 1
        if args.connections < count <= args.connections + args.refuse:
            client.close()
            continue
        budget = args.cut_after if count <= args.connections else None
        threading.Thread(target=handle, args=(client, args.target, budget), daemon=True).start()


if __name__ == "__main__":
    main()
