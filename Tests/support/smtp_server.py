#!/usr/bin/env python3
"""Loopback SMTP server for muster's tests (aiosmtpd 1.4.x).

Listens on 127.0.0.1 on a free port, prints the port on stdout once listening, and
saves each accepted message to SPOOL as NNNN.eml (raw bytes) and NNNN.json (envelope).
Stops on SIGTERM, or with --exit-on-stdin-eof when its stdin closes (so it never
outlives the test process).

Modes (--mode):
  plain      SMTP, no TLS
  starttls   SMTP with STARTTLS required (self-signed certificate, see --cert-out)
  smtps      implicit TLS from the first byte
  greet421   answers every connection with 421 and closes
  greet554   answers every connection with 554 (no SMTP service here) and closes
  silent     accepts connections and never says anything
Options:
  --auth USER:PASSWORD        require AUTH (PLAIN/LOGIN); a wrong password gets 535
  --auth-without-tls          allow AUTH on a plain connection
  --cert-out PATH             where to write the self-signed certificate (PEM) for clients
  --tempfail-data REGEX       451 after DATA when a recipient matches
  --reject-rcpt REGEX         550 on RCPT TO for matching recipients (quoting the address)
  --reject-delay SECONDS      wait this long before each --reject-rcpt or --tempfail-data reply
  --reject-sender REGEX       553 on MAIL FROM for matching senders
  --reject-helo               550 to EHLO and HELO
  --drop-at-rcpt REGEX        drop the connection on RCPT TO for matching recipients
  --drop-after-dot REGEX      save the message, then drop the connection without a reply
  --silent-after-dot REGEX    save the message, then never reply
  --smtputf8                  advertise SMTPUTF8 (RFC 6531) and accept UTF-8 addresses
  --exit-on-stdin-eof         stop when stdin reaches end of file (tests pass a pipe)
  --port PORT                 listen on this port (default: a free one)
"""
import argparse
import socket
import asyncio
import datetime
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import ssl
import sys
import tempfile
import threading

from aiosmtpd.smtp import SMTP, AuthResult


def self_signed_with_cryptography():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def self_signed_with_openssl(workdir):
    cert_path, key_path = os.path.join(workdir, "ossl-cert.pem"), os.path.join(workdir, "ossl-key.pem")
    subprocess.run([
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key_path, "-out", cert_path, "-days", "2", "-subj", "/CN=localhost",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-addext", "basicConstraints=critical,CA:TRUE",
    ], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(cert_path, "rb") as c, open(key_path, "rb") as k:
        return c.read(), k.read()


def make_tls_context(cert_out):
    """A self-signed certificate for localhost and 127.0.0.1, made with the
    `cryptography` package when installed, else with the openssl command."""
    # The key and certificate are on disk only until the context has loaded them.
    workdir = tempfile.mkdtemp(prefix="muster-smtp-tls-")
    try:
        try:
            cert_pem, key_pem = self_signed_with_cryptography()
        except ImportError:
            cert_pem, key_pem = self_signed_with_openssl(workdir)
        if cert_out:
            with open(cert_out, "wb") as f:
                f.write(cert_pem)
        cert_path, key_path = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
        with open(cert_path, "wb") as f:
            f.write(cert_pem)
        with open(key_path, "wb") as f:
            f.write(key_pem)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert_path, key_path)
        return ctx
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class Handler:
    def __init__(self, args):
        self.args = args
        self.count = 0

    def matches(self, pattern, addresses):
        return pattern is not None and any(re.search(pattern, a) for a in addresses)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.matches(self.args.drop_at_rcpt, [address]):
            server.transport.abort()
            return "250 OK (never delivered to the client)"
        if self.matches(self.args.reject_rcpt, [address]):
            await asyncio.sleep(self.args.reject_delay)
            return "550 5.1.1 <%s>: recipient rejected by test server" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.matches(self.args.reject_sender, [address]):
            return "553 5.1.8 <%s>: sender address rejected by test server" % address
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    def save(self, server, session, envelope, note):
        self.count += 1
        base = os.path.join(self.args.spool, "%04d" % self.count)
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content or b"")
        meta = {
            "mail_from": envelope.mail_from,
            "mail_options": envelope.mail_options,
            "smtp_utf8": bool(envelope.smtp_utf8),
            "rcpt_tos": envelope.rcpt_tos,
            "peer": list(session.peer) if session.peer else None,
            "auth": session.authenticated,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "note": note,
        }
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".json.tmp", base + ".json")

    async def handle_DATA(self, server, session, envelope):
        rcpts = envelope.rcpt_tos
        if self.matches(self.args.tempfail_data, rcpts):
            await asyncio.sleep(self.args.reject_delay)
            return "451 4.3.0 Temporary failure, try again later"
        if self.matches(self.args.drop_after_dot, rcpts):
            self.save(server, session, envelope, "dropped")
            server.transport.abort()
            return "250 OK (never delivered to the client)"
        if self.matches(self.args.silent_after_dot, rcpts):
            self.save(server, session, envelope, "silent")
            await asyncio.sleep(3600)
        self.save(server, session, envelope, "accepted")
        return "250 2.0.0 OK queued as %04d" % self.count


class ResettingSMTP(SMTP):
    """Resets the connection in the middle of DATA for recipients matching a pattern:
    answers 354, stops reading, and aborts (TCP RST) a moment later. The listening socket
    then has a tiny receive buffer, so a large message is still being sent at that point."""

    def __init__(self, handler, reset_pattern, reject_helo=False, **kwargs):
        super().__init__(handler, **kwargs)
        self.reset_pattern = reset_pattern
        self.reject_helo = reject_helo

    async def smtp_EHLO(self, hostname):
        if self.reject_helo:
            await self.push("550 5.7.1 EHLO refused by test server")
            return
        await super().smtp_EHLO(hostname)

    async def smtp_HELO(self, hostname):
        if self.reject_helo:
            await self.push("550 5.7.1 HELO refused by test server")
            return
        await super().smtp_HELO(hostname)

    async def smtp_DATA(self, arg):
        rcpts = self.envelope.rcpt_tos if self.envelope else []
        if self.reset_pattern and any(re.search(self.reset_pattern, a) for a in rcpts):
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            self.transport.pause_reading()
            await asyncio.sleep(0.3)
            self.transport.abort()
            return
        await super().smtp_DATA(arg)


class Greet421(asyncio.Protocol):
    def connection_made(self, transport):
        transport.write(b"421 4.3.2 Service not available, closing transmission channel\r\n")
        transport.close()


class Greet554(asyncio.Protocol):
    def connection_made(self, transport):
        transport.write(b"554 5.3.2 No SMTP service here\r\n")
        transport.close()


class Silent(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport  # keep it open, say nothing


def main():
    # A parent may spawn us with signals blocked (Swift's Foundation.Process on Linux
    # inherits the spawning thread's mask): unblock them so SIGTERM stops the server.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
    p = argparse.ArgumentParser()
    p.add_argument("--mode", default="plain", choices=["plain", "starttls", "smtps", "greet421", "greet554", "silent"])
    p.add_argument("--spool", required=True)
    p.add_argument("--auth")
    p.add_argument("--auth-without-tls", action="store_true")
    p.add_argument("--cert-out")
    p.add_argument("--tempfail-data")
    p.add_argument("--reject-rcpt")
    p.add_argument("--reject-delay", type=float, default=0)
    p.add_argument("--reject-sender")
    p.add_argument("--reject-helo", action="store_true")
    p.add_argument("--drop-after-dot")
    p.add_argument("--drop-at-rcpt")
    p.add_argument("--silent-after-dot")
    p.add_argument("--reset-in-data")
    p.add_argument("--smtputf8", action="store_true")
    p.add_argument("--exit-on-stdin-eof", action="store_true")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    os.makedirs(args.spool, exist_ok=True)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    handler = Handler(args)
    tls = make_tls_context(args.cert_out) if args.mode in ("starttls", "smtps") else None

    authenticator = None
    if args.auth:
        user, _, password = args.auth.partition(":")

        def authenticator(server, session, envelope, mechanism, auth_data):
            # Every AUTH attempt is logged, so tests can tell nothing was tried in clear.
            with open(os.path.join(args.spool, "auth.log"), "a") as log:
                tls = server.transport.get_extra_info("ssl_object") is not None
                log.write("%s tls=%s\n" % (mechanism, tls))
            ok = auth_data.login == user.encode() and auth_data.password == password.encode()
            # handled=False makes aiosmtpd answer 535 (returning nothing hangs the client).
            return AuthResult(success=ok, handled=False)

    def factory():
        if args.mode == "greet421":
            return Greet421()
        if args.mode == "greet554":
            return Greet554()
        if args.mode == "silent":
            return Silent()
        return ResettingSMTP(
            handler,
            args.reset_in_data,
            reject_helo=args.reject_helo,
            hostname="muster-test.localhost",
            tls_context=tls if args.mode == "starttls" else None,
            require_starttls=args.mode == "starttls",
            authenticator=authenticator,
            auth_required=bool(args.auth),
            auth_require_tls=not args.auth_without_tls,
            enable_SMTPUTF8=args.smtputf8,
        )

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if args.reset_in_data:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(128)
    server = loop.run_until_complete(loop.create_server(
        factory, sock=listener, ssl=tls if args.mode == "smtps" else None))
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)

    def stop(*_):
        loop.stop()

    loop.add_signal_handler(signal.SIGTERM, stop)
    loop.add_signal_handler(signal.SIGINT, stop)
    if args.exit_on_stdin_eof:
        # Exit when the test process goes away (its end of our stdin pipe closes).
        def watch():
            while os.read(0, 4096):
                pass
            loop.call_soon_threadsafe(stop)
        threading.Thread(target=watch, daemon=True).start()
    try:
        loop.run_forever()
    finally:
        server.close()
        sys.stdout.flush()
        # Leave at once: a daemon thread blocked reading stdin must not delay exit.
        os._exit(0)


if __name__ == "__main__":
    main()
