#!/usr/bin/env python3
"""Parses a message (.eml) with Python's email package (policy.default) and prints JSON:
decoded headers, defects, and each leaf part's content type and decoded text.
Used by muster's tests to check messages the way a real mail client reads them."""
import email
import email.policy
import json
import sys

with open(sys.argv[1], "rb") as f:
    raw = f.read()
msg = email.message_from_bytes(raw, policy=email.policy.default)
headers = {}
for name, value in msg.items():
    headers.setdefault(name, []).append(str(value))
parts = []
for part in msg.walk():
    if part.is_multipart():
        continue
    parts.append({
        "content_type": part.get_content_type(),
        "charset": part.get_content_charset(),
        "cte": part.get("Content-Transfer-Encoding"),
        "text": part.get_content(),
    })
defects = [type(d).__name__ for d in msg.defects]
for part in msg.walk():
    defects += [type(d).__name__ for d in part.defects]
for name, value in msg.items():
    defects += [type(d).__name__ for d in getattr(value, "defects", [])]
print(json.dumps({
    "headers": headers,
    "content_type": msg.get_content_type(),
    "parts": parts,
    "defects": defects,
}))
