#!/usr/bin/env python3
"""Checks DKIM signatures with dkimpy, an implementation independent of muster's.

    dkim_verify.py --key PEM --selector S --domain D FILE...   (prints JSON {FILE: true|false})
    dkim_verify.py --record-for PEM                            (prints the DNS TXT record)

The public key is published to dkimpy through its `dnsfunc` hook, as the TXT record of
S._domainkey.D — no DNS server involved — so the check is only of the signature itself.
"""
import argparse, base64, json, sys

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa


def record(pem_path):
    key = serialization.load_pem_private_key(open(pem_path, "rb").read(), password=None)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return "v=DKIM1; k=ed25519; p=" + base64.b64encode(raw).decode()
    if isinstance(key, rsa.RSAPrivateKey):
        der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
    sys.exit("dkim_verify: unsupported key type")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--key")
    parser.add_argument("--selector")
    parser.add_argument("--domain")
    parser.add_argument("--record-for")
    parser.add_argument("files", nargs="*")
    args = parser.parse_args()
    if args.record_for:
        print(record(args.record_for))
        return
    txt = record(args.key).encode()
    name = f"{args.selector}._domainkey.{args.domain}.".encode()

    def dnsfunc(queried, timeout=5):
        return txt if queried == name else None

    results = {}
    for path in args.files:
        data = open(path, "rb").read()
        try:
            results[path] = bool(dkim.verify(data, dnsfunc=dnsfunc))
        except dkim.DKIMException as error:
            print(f"dkim_verify: {path}: {error}", file=sys.stderr)
            results[path] = False
    print(json.dumps(results))


if __name__ == "__main__":
    main()
