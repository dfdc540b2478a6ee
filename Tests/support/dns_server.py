#!/usr/bin/env python3
"""Loopback DNS server for muster's tests (dnslib 0.9.x).

Serves a zone from a JSON file over UDP and TCP on 127.0.0.1, on one free port (the same
number for both), prints the port on stdout once listening, and stops when its stdin
closes (--exit-on-stdin-eof), so it never outlives the test.

The zone file maps names to records:

  {"fairrates.example": {"TXT": ["v=spf1 ip4:127.0.0.0/8 -all"],
                         "MX": [[10, "mail.fairrates.example"]]},
   "mail.fairrates.example": {"A": ["127.0.0.1"]},
   "empty.fairrates.example": {}}

A TXT value is a string, or a list of strings to send as that many character-strings of
one record (a long DKIM key split as zone files split it). A name in the file with no
record of the type asked is NOERROR with an empty answer; a name not in the file is
NXDOMAIN. "SERVFAIL": true under a name answers SERVFAIL for it.

Modes (--mode): zone (default) answers from the zone; silent reads queries and never
answers (a server that does not respond).
"""
import argparse
import json
import socket
import struct
import sys
import threading

from dnslib import A, AAAA, MX, QTYPE, RCODE, RR, TXT, DNSRecord


def answer(zone, data):
    request = DNSRecord.parse(data)
    reply = request.reply()
    name = str(request.q.qname).rstrip(".").lower()
    qtype = QTYPE[request.q.qtype]
    entry = zone.get(name)
    if entry is None:
        reply.header.rcode = RCODE.NXDOMAIN
        return reply.pack()
    if entry.get("SERVFAIL"):
        reply.header.rcode = RCODE.SERVFAIL
        return reply.pack()
    for value in entry.get(qtype, []):
        if qtype == "TXT":
            strings = value if isinstance(value, list) else [value]
            rdata = TXT([s.encode("utf-8") for s in strings])
        elif qtype == "MX":
            rdata = MX(value[1] or ".", value[0])
        elif qtype == "A":
            rdata = A(value)
        elif qtype == "AAAA":
            rdata = AAAA(value)
        else:
            continue
        reply.add_answer(RR(request.q.qname, QTYPE.reverse[qtype], rdata=rdata, ttl=60))
    return reply.pack()


def safe_answer(zone, data):
    """The answer, or SERVFAIL when the zone holds what DNS cannot carry (a TXT string over
    255 bytes): a broken test zone shows as a failure, never as a silent server."""
    try:
        return answer(zone, data)
    except Exception as error:
        print(f"dns_server: {error!r}", file=sys.stderr)
        try:
            reply = DNSRecord.parse(data).reply()
            reply.header.rcode = RCODE.SERVFAIL
            return reply.pack()
        except Exception:
            return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--zone", help="JSON zone file")
    parser.add_argument("--mode", default="zone", choices=["zone", "silent"])
    parser.add_argument("--exit-on-stdin-eof", action="store_true")
    args = parser.parse_args()
    zone = {}
    if args.zone:
        with open(args.zone, encoding="utf-8") as f:
            zone = {k.rstrip(".").lower(): v for k, v in json.load(f).items()}

    # One port for both: bind UDP on a free port, then TCP on the same number; when
    # another process holds that number for TCP (tests run in parallel), take another.
    for _ in range(100):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.bind(("127.0.0.1", port))
            break
        except OSError:
            tcp.close()
            udp.close()
    else:
        sys.exit("dns_server: found no port free for both UDP and TCP")
    tcp.listen(16)

    def serve_udp():
        while True:
            data, peer = udp.recvfrom(65535)
            if args.mode == "silent":
                continue
            response = safe_answer(zone, data)
            if response is None:
                continue
            if len(response) > 512:
                # Classic DNS over UDP: truncate, so the client retries over TCP.
                request = DNSRecord.parse(data)
                short = request.reply()
                short.header.tc = 1
                response = short.pack()
            udp.sendto(response, peer)

    def serve_tcp():
        while True:
            conn, _ = tcp.accept()
            threading.Thread(target=handle_tcp, args=(conn,), daemon=True).start()

    def handle_tcp(conn):
        with conn:
            try:
                while True:
                    head = conn.recv(2)
                    if len(head) < 2:
                        return
                    (length,) = struct.unpack("!H", head)
                    data = b""
                    while len(data) < length:
                        chunk = conn.recv(length - len(data))
                        if not chunk:
                            return
                        data += chunk
                    if args.mode == "silent":
                        continue
                    response = safe_answer(zone, data)
                    if response is None:
                        return
                    conn.sendall(struct.pack("!H", len(response)) + response)
            except OSError:
                return

    threading.Thread(target=serve_udp, daemon=True).start()
    threading.Thread(target=serve_tcp, daemon=True).start()
    print(port, flush=True)
    if args.exit_on_stdin_eof:
        sys.stdin.read()
    else:
        threading.Event().wait()


if __name__ == "__main__":
    main()
