#!/usr/bin/env python3
"""Parses a message (.eml) with Python's email package (policy.default) and prints JSON:
decoded headers, defects, and each leaf part's content type, disposition, file name and
decoded text. Used by muster's tests to check messages the way a real mail client reads them.

A header block that is not ASCII but valid UTF-8 (RFC 6532, sent with SMTPUTF8) is
parsed as text: the bytes parser would otherwise treat its UTF-8 as undecodable."""
import email
import email.policy
import json
import sys

with open(sys.argv[1], "rb") as f:
    raw = f.read()
head = raw.split(b"\r\n\r\n", 1)[0]
try:
    utf8_headers = not head.isascii() and bool(head.decode("utf-8"))
except UnicodeDecodeError:
    utf8_headers = False
if utf8_headers:
    msg = email.message_from_string(raw.decode("utf-8"), policy=email.policy.default)
else:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
headers = {}
for name, value in msg.items():
    headers.setdefault(name, []).append(str(value))
parts = []
for part in msg.walk():
    if part.is_multipart():
        continue
    content = part.get_content()
    parts.append({
        "content_type": part.get_content_type(),
        "charset": part.get_content_charset(),
        "cte": part.get("Content-Transfer-Encoding"),
        "disposition": part.get_content_disposition(),
        "filename": part.get_filename(),
        "text": content if isinstance(content, str) else content.decode("utf-8", "replace"),
    })
defects = [type(d).__name__ for d in msg.defects]
for part in msg.walk():
    defects += [type(d).__name__ for d in part.defects]
for name, value in msg.items():
    defects += [type(d).__name__ for d in getattr(value, "defects", [])]
print(json.dumps({
    "headers": headers,
    "content_type": msg.get_content_type(),
    "structure": [p.get_content_type() for p in msg.walk()],
    "utf8_headers": utf8_headers,
    "parts": parts,
    "defects": defects,
}))
