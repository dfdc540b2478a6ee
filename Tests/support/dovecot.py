#!/usr/bin/env python3
"""A throwaway Dovecot IMAP server for muster's tests (Debian's dovecot-imapd 2.3).

  dovecot.py serve --dir DIR [options]
      Writes a config, a self-signed certificate (openssl), a passwd-file user and a
      maildir under DIR, starts Dovecot in the foreground on free loopback ports, prints
      one JSON line on stdout once both ports answer, and stops Dovecot when its stdin
      closes (tests pass a pipe, so it never outlives them) or on SIGTERM.
      Dovecot never runs as root: as root, it runs as 'nobody' and DIR is given to it.
      The JSON: plain (port: IMAP with STARTTLS), tls (port: implicit TLS), ca (the
      certificate to trust), user, password, dir.
        --no-tls        no TLS at all: the plain port offers no STARTTLS, no tls port
        --hide-move     the capability list leaves MOVE out (muster must fall back to
                        UID COPY + UID STORE + UID EXPUNGE)
        --hide-uidplus  leaves MOVE and UIDPLUS out
        --load FILE...  messages put into INBOX before the start (maildir new/)
        --separator C   the hierarchy separator (default '/'; '.' is maildir's classic)

  dovecot.py append|state|flag --port P --ca CA --user U --password W ...
      A second, independent client (Python's imaplib over STARTTLS):
        append [--folder F] [--flags '\\Seen'] FILE...   APPEND each file
        state                                   every folder read-only (EXAMINE, PEEK): JSON
                                                {folder: [{uid, flags, message_id, subject, size}]}
        flag --uid N --flags '\\Deleted'         UID STORE +FLAGS in INBOX
"""
import argparse
import ctypes
import email.parser
import email.policy
import imaplib
import json
import os
import pwd
import grp
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, deadline, greeting=True):
    """Until the port accepts (and, for clear text, greets)."""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if not greeting or s.recv(100).startswith(b"* OK"):
                    return True
        except OSError:
            time.sleep(0.05)
    return False


def serve(args):
    root = os.path.abspath(args.dir)
    os.makedirs(root, exist_ok=True)
    if os.getuid() == 0:
        account = pwd.getpwnam("nobody")
        uid, gid = account.pw_uid, account.pw_gid
        user, group = account.pw_name, grp.getgrgid(gid).gr_name
    else:
        uid, gid = os.getuid(), os.getgid()
        user, group = pwd.getpwuid(uid).pw_name, grp.getgrgid(gid).gr_name
    for sub in ("run", "state", "home", "mail"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    password = "muster-test-" + os.urandom(6).hex()
    login = "bounces"
    with open(os.path.join(root, "passwd"), "w") as f:
        f.write(f"{login}:{{PLAIN}}{password}::::::\n")
    cert, key = os.path.join(root, "cert.pem"), os.path.join(root, "key.pem")
    if not args.no_tls:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    maildir = os.path.join(root, "mail", login)
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    for index, path in enumerate(args.load or []):
        with open(path, "rb") as source:
            data = source.read().replace(b"\r\n", b"\n")
        with open(os.path.join(maildir, "new", f"{1000000000 + index}.M{index}P{os.getpid()}.muster-test"), "wb") as out:
            out.write(data)
    plain, tls = free_port(), free_port()
    lines = [
        f"base_dir = {root}/run",
        f"state_dir = {root}/state",
        f"log_path = {root}/dovecot.log",
        f"info_log_path = {root}/dovecot.log",
        f"default_internal_user = {user}",
        f"default_internal_group = {group}",
        f"default_login_user = {user}",
        "first_valid_uid = 1",
        "protocols = imap",
        "listen = 127.0.0.1",
        "auth_mechanisms = plain login",
        "passdb {", "  driver = passwd-file", f"  args = scheme=PLAIN username_format=%u {root}/passwd", "}",
        "userdb {", "  driver = static", f"  args = uid={uid} gid={gid} home={root}/home/%u", "}",
        f"mail_location = maildir:{root}/mail/%u:LAYOUT=fs" if args.separator == "/" else f"mail_location = maildir:{root}/mail/%u",
        "namespace inbox {", "  inbox = yes", f"  separator = {args.separator}", "}",
        "service anvil {", "  chroot =", "}",
        "service imap-login {", "  chroot =",
        "  inet_listener imap {", "    address = 127.0.0.1", f"    port = {plain}", "  }",
        "  inet_listener imaps {", "    address = 127.0.0.1", f"    port = {tls if not args.no_tls else 0}", "    ssl = yes" if not args.no_tls else "", "  }",
        "}",
    ]
    if args.no_tls:
        lines += ["ssl = no", "disable_plaintext_auth = no"]
    else:
        lines += ["ssl = required", f"ssl_cert = <{cert}", f"ssl_key = <{key}", "disable_plaintext_auth = yes"]
        if os.path.exists("/usr/share/dovecot/dh.pem"):
            lines.append("ssl_dh = </usr/share/dovecot/dh.pem")
    if args.hide_uidplus:
        lines.append("imap_capability = IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE")
    elif args.hide_move:
        lines.append("imap_capability = IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE UIDPLUS")
    conf = os.path.join(root, "dovecot.conf")
    with open(conf, "w") as f:
        f.write("\n".join(line for line in lines if line) + "\n")
    if os.getuid() == 0:
        for base, dirs, files in os.walk(root):
            for name in dirs + files:
                os.chown(os.path.join(base, name), uid, gid)
        os.chown(root, uid, gid)

    def drop():
        # Dovecot stops when this script does, even when it is killed outright.
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getuid() == 0:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)

    process = subprocess.Popen([DOVECOT, "-F", "-c", conf], preexec_fn=drop, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=open(os.path.join(root, "dovecot.stderr"), "wb"))

    def stop(*_):
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    deadline = time.monotonic() + 30
    if not wait_for(plain, deadline) or (not args.no_tls and not wait_for(tls, deadline, greeting=False)):
        log = ""
        for name in ("dovecot.stderr", "dovecot.log"):
            try:
                log += open(os.path.join(root, name)).read()
            except OSError:
                pass
        print(json.dumps({"error": "dovecot did not start", "log": log[-3000:]}), flush=True)
        stop()
    print(json.dumps({"plain": plain, "tls": None if args.no_tls else tls, "ca": None if args.no_tls else cert,
                      "user": login, "password": password, "dir": root}), flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), stop()), daemon=True).start()
    process.wait()
    os._exit(1)


def connect(args):
    client = imaplib.IMAP4("127.0.0.1", args.port)
    context = ssl.create_default_context(cafile=args.ca)
    client.starttls(context)
    client.login(args.user, args.password)
    return client


def quote(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def append(args):
    client = connect(args)
    for path in args.files:
        with open(path, "rb") as f:
            data = f.read()
        if b"\r\n" not in data:
            data = data.replace(b"\n", b"\r\n")
        status, detail = client.append(quote(args.folder), args.flags or None, None, data)
        if status != "OK":
            sys.exit(f"APPEND {path}: {detail}")
    client.logout()


def state(args):
    client = connect(args)
    status, listing = client.list()
    folders = []
    for line in listing:
        text = line.decode()
        name = text.rsplit(" ", 1)[1] if not text.endswith('"') else text[text.rindex('"', 0, len(text) - 1) + 1:-1]
        if "\\Noselect" not in text:
            folders.append(name)
    out = {}
    parser = email.parser.BytesHeaderParser(policy=email.policy.default)
    for folder in folders:
        status, _ = client.select(quote(folder), readonly=True)
        if status != "OK":
            continue
        status, data = client.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID SUBJECT)])")
        messages = []
        for item in data:
            if not isinstance(item, tuple):
                continue
            meta, header = item[0].decode(), item[1]
            uid = int(meta.split("UID ", 1)[1].split()[0].rstrip(")"))
            flags = [f for f in meta.split("FLAGS (", 1)[1].split(")", 1)[0].split() if f != "\\Recent"]
            size = int(meta.split("RFC822.SIZE ", 1)[1].split()[0].rstrip(")"))
            headers = parser.parsebytes(header)
            messages.append({"uid": uid, "flags": flags, "size": size,
                             "message_id": str(headers.get("Message-ID", "")).strip(), "subject": str(headers.get("Subject", ""))})
        out[folder] = sorted(messages, key=lambda m: m["uid"])
        client.close()
    client.logout()
    print(json.dumps(out, sort_keys=True))


def flag(args):
    client = connect(args)
    client.select("INBOX")
    status, detail = client.uid("STORE", str(args.uid), "+FLAGS.SILENT", f"({args.flags})")
    if status != "OK":
        sys.exit(f"STORE: {detail}")
    client.logout()


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--dir", required=True)
    s.add_argument("--no-tls", action="store_true")
    s.add_argument("--hide-move", action="store_true")
    s.add_argument("--hide-uidplus", action="store_true")
    s.add_argument("--separator", default="/")
    s.add_argument("--load", nargs="*")
    for name in ("append", "state", "flag"):
        c = sub.add_parser(name)
        c.add_argument("--port", type=int, required=True)
        c.add_argument("--ca", required=True)
        c.add_argument("--user", required=True)
        c.add_argument("--password", required=True)
        if name == "append":
            c.add_argument("--folder", default="INBOX")
            c.add_argument("--flags")
            c.add_argument("files", nargs="+")
        if name == "flag":
            c.add_argument("--uid", type=int, required=True)
            c.add_argument("--flags", required=True)
    args = parser.parse_args()
    {"serve": serve, "append": append, "state": state, "flag": flag}[args.command](args)


if __name__ == "__main__":
    main()
