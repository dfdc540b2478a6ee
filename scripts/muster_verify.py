#!/usr/bin/env python3
"""Reference verifier for muster's checkpoints, receipts, consistency proofs and
public logs, written from docs/transparency.md with nothing but Python's standard
library (Ed25519 verification included, after RFC 8032 section 6).

    muster_verify.py checkpoint NOTE --key VKEY
    muster_verify.py receipt RECEIPT.json [--key VKEY] [--email ADDRESS]
    muster_verify.py consistency PROOF.json --key VKEY
    muster_verify.py log LOG.jsonl --checkpoint NOTE --key VKEY

VKEY is the campaign's public key: the file checkpoint.vkey, or its one line.
--witness WVKEY (repeatable, any command but vectors) also requires that witness's
cosignature on every checkpoint checked.
Add --json for one JSON object on stdout. Exit 0 when everything checks out, 1 with
"FAILED: reason" when anything does not, 64 for wrong usage.
"""

import base64
import hashlib
import json
import os
import sys

# --- Ed25519 verification (RFC 8032, section 6) ---------------------------------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P)
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


_GY = 4 * pow(5, P - 2, P) % P
_GX = _recover_x(_GY, 0)
G = (_GX, _GY, 1, _GX * _GY % P)


def _add(a, b):
    A = (a[1] - a[0]) * (b[1] - b[0]) % P
    B = (a[1] + a[0]) * (b[1] + b[0]) % P
    C = 2 * a[3] * b[3] * D % P
    Dd = 2 * a[2] * b[2] % P
    E, F, Gg, H = B - A, Dd - C, Dd + C, B + A
    return (E * F, Gg * H, F * Gg, E * H)


def _mul(s, point):
    q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = _add(q, point)
        point = _add(point, point)
        s >>= 1
    return q


def _equal(a, b):
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


def _decompress(s):
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


def ed25519_verify(public, message, signature):
    if len(public) != 32 or len(signature) != 64:
        return False
    a = _decompress(public)
    r = _decompress(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= L:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % L
    return _equal(_mul(s, G), _add(r, _mul(h, a)))


# --- Merkle tree (RFC 9162, section 2.1) ----------------------------------------


class Failed(Exception):
    pass


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_of(leaves):
    """MTH of a list of leaf hashes, with a stack of complete subtrees."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    stack = []  # (size, hash), sizes decreasing powers of two
    for leaf in leaves:
        size, h = 1, leaf
        while stack and stack[-1][0] == size:
            left = stack.pop()[1]
            h = node_hash(left, h)
            size *= 2
        stack.append((size, h))
    h = stack[-1][1]
    for _, left in reversed(stack[:-1]):
        h = node_hash(left, h)
    return h


def verify_inclusion(index, size, leaf, proof, root):
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        raise Failed(f"leaf {index} is not inside a tree of {size} leaves")
    if any(len(p) != 32 for p in proof):
        raise Failed("a proof hash is not 32 bytes long")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise Failed(f"the inclusion proof is longer than a tree of {size} leaves needs")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Failed(f"the inclusion proof is shorter than a tree of {size} leaves needs")
    if r != root:
        raise Failed("the inclusion proof does not lead to the checkpoint's root hash")


def verify_consistency(m, n, old_root, new_root, proof):
    """RFC 9162 section 2.1.4.2."""
    if m < 1:
        raise Failed(f"a tree of {m} leaves has nothing to prove")
    if m > n:
        raise Failed(f"the old tree ({m} leaves) is larger than the new one ({n})")
    if any(len(p) != 32 for p in proof):
        raise Failed("a proof hash is not 32 bytes long")
    if m == n:
        if proof:
            raise Failed("a consistency proof between trees of the same size must be empty")
        if old_root != new_root:
            raise Failed("both trees have the same size but different root hashes")
        return
    if not proof:
        raise Failed("the consistency proof is empty")
    path = list(proof)
    if m & (m - 1) == 0:
        path.insert(0, old_root)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise Failed("the consistency proof is longer than these sizes need")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Failed("the consistency proof is shorter than these sizes need")
    if fr != old_root:
        raise Failed(f"the consistency proof does not lead to the old root hash: the first {m} entries were changed")
    if sr != new_root:
        raise Failed("the consistency proof does not lead to the new root hash")


# --- Ledger entries (docs/ledger-format.md) -------------------------------------


def entry_bytes(e):
    def field(name):
        value = e.get(name)
        return b"" if value is None else str(value).encode("utf-8")
    return (b"muster-ledger-v1\x00" + str(e["seq"]).encode() + b"\x00" + field("kind") + b"\x00" + field("at")
            + b"\x00" + field("fingerprint") + b"\x00" + field("body") + b"\x00" + field("personal_hash")
            + b"\x00" + field("prev"))


# --- Signed notes and checkpoints (C2SP signed-note, tlog-checkpoint) -----------


def parse_vkey(text):
    line = text.strip()
    parts = line.split("+", 2)
    if len(parts) != 3 or len(parts[1]) != 8:
        raise Failed("the public key is not of the form <name>+<8 hex digits>+<base64 key>")
    name, hex_id, b64 = parts
    try:
        key = base64.b64decode(b64, validate=True)
        key_id = int(hex_id, 16)
    except ValueError:
        raise Failed("the public key is not of the form <name>+<8 hex digits>+<base64 key>")
    if len(key) != 33 or key[0] != 1:
        raise Failed("the public key is not an Ed25519 key")
    if not name or any(c.isspace() or c == "+" for c in name):
        raise Failed("the public key's name is not a valid key name")
    expected = int.from_bytes(hashlib.sha256(name.encode() + b"\n" + key).digest()[:4], "big")
    if expected != key_id:
        raise Failed("the public key's ID does not match its name and key")
    return name, key_id, key[1:]


def read_key(argument):
    if argument is None:
        return None
    if os.path.exists(argument):
        with open(argument, encoding="utf-8") as f:
            return parse_vkey(f.read())
    return parse_vkey(argument)


def verify_note(note, key):
    """Returns the note's text once a signature by key verifies over it."""
    name, key_id, public = key
    if "\r" in note:
        raise Failed("the note holds a carriage return")
    split = note.rfind("\n\n")
    if split < 0:
        raise Failed("the note has no blank line before its signatures: it is truncated or not a signed note")
    text = note[: split + 1]
    block = note[split + 2:]
    if not block.endswith("\n"):
        raise Failed("the note's last signature line does not end with a newline: the note is truncated")
    signed_by = []
    for line in block[:-1].split("\n"):
        fields = line.split(" ")
        if len(fields) != 3 or fields[0] != "\u2014":
            raise Failed(f"the note's signature line {line[:80]!r} is malformed (truncated?)")
        try:
            blob = base64.b64decode(fields[2], validate=True)
        except ValueError:
            raise Failed(f"the note's signature line {line[:80]!r} is malformed (truncated?)")
        if len(blob) <= 4:
            raise Failed("a signature in the note is too short")
        signed_by.append((fields[1], int.from_bytes(blob[:4], "big"), blob[4:]))
    for signer, signer_id, signature in signed_by:
        if signer == name and signer_id == key_id:
            if not ed25519_verify(public, text.encode("utf-8"), signature):
                raise Failed(f"the signature by {name} does not verify: the note was changed after it was signed")
            return text
    names = ", ".join(f"{n} (key {i:08x})" for n, i, _ in signed_by)
    raise Failed(f"the note is not signed by the key {name} (key {key_id:08x}); it is signed by {names}")


WITNESSES = []  # --witness keys: each must have cosigned every checkpoint checked


def parse_checkpoint(note, key):
    text = verify_note(note, key)
    for witness in WITNESSES:
        try:
            verify_note(note, witness)
        except Failed as failure:
            raise Failed(f"the checkpoint is not cosigned by the witness {witness[0]}: {failure}")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise Failed("the checkpoint needs origin, tree size and root hash")
    origin, size_text, root_text = lines[:3]
    if origin != key[0]:
        raise Failed(f"the checkpoint is for {origin!r}, not for the campaign of this key ({key[0]!r})")
    if not size_text.isdigit() or str(int(size_text)) != size_text:
        raise Failed(f"the checkpoint's tree size {size_text[:40]!r} is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except ValueError:
        root = b""
    if len(root) != 32:
        raise Failed("the checkpoint's root hash is not 32 bytes of base64")
    checkpoint = {"origin": origin, "size": int(size_text), "root": root, "signatures": None, "time": None}
    for line in lines[3:]:
        if line.startswith("signatures ") and line[11:].isdigit():
            checkpoint["signatures"] = int(line[11:])
        elif line.startswith("time "):
            checkpoint["time"] = line[5:]
    return checkpoint


def b64list(values):
    try:
        return [base64.b64decode(v, validate=True) for v in values]
    except (ValueError, TypeError):
        raise Failed("a proof hash is not base64")


# --- Commands -------------------------------------------------------------------


def cmd_checkpoint(args, out):
    with open(args["path"], encoding="utf-8") as f:
        checkpoint = parse_checkpoint(f.read(), read_key(args["key"]))
    out.update(origin=checkpoint["origin"], size=checkpoint["size"], root=base64.b64encode(checkpoint["root"]).decode(),
               signatures=checkpoint["signatures"], time=checkpoint["time"])
    return [f"checkpoint of {checkpoint['origin']}: {checkpoint['size']} entries, "
            f"{checkpoint['signatures']} signatures, signed by its key"]


def cmd_receipt(args, out):
    with open(args["path"], encoding="utf-8") as f:
        receipt = json.load(f)
    if receipt.get("format") != "muster-receipt/1":
        raise Failed("not a muster receipt (format muster-receipt/1)")
    lines = []
    key = read_key(args["key"])
    if key is None:
        key = parse_vkey(receipt["public_key"])
        lines.append("note: checked against the key inside the receipt; compare it with the campaign's published key:")
        lines.append("      " + receipt["public_key"])
    elif parse_vkey(receipt["public_key"]) != key:
        lines.append("note: the receipt carries another key than the one given; the one given was used")
    checkpoint = parse_checkpoint(receipt["checkpoint"], key)
    entry = receipt["entry"]
    personal = receipt["personal"]
    if entry.get("kind") != "signature":
        raise Failed(f"the receipt's entry is a {entry.get('kind')!r}, not a signature")
    salt = bytes.fromhex(personal["salt"])
    data = personal["data"].encode("utf-8")
    if hashlib.sha256(salt + data).hexdigest() != entry.get("personal_hash"):
        raise Failed("the personal data and salt do not hash to the entry's personal_hash: the receipt was altered")
    raw = entry_bytes(entry)
    if hashlib.sha256(raw).hexdigest() != entry.get("hash"):
        raise Failed("the entry's fields do not hash to its entry hash: the receipt was altered")
    index = receipt["leaf_index"]
    if index != entry["seq"] - 1:
        raise Failed(f"the receipt puts entry {entry['seq']} at leaf {index}; it must be leaf {entry['seq'] - 1}")
    if receipt["tree_size"] != checkpoint["size"]:
        raise Failed(f"the receipt's tree size {receipt['tree_size']} is not the checkpoint's ({checkpoint['size']})")
    verify_inclusion(index, checkpoint["size"], leaf_hash(raw), b64list(receipt["inclusion_proof"]), checkpoint["root"])
    person = json.loads(personal["data"])
    if args["email"] is not None and person.get("email", "").strip().lower() != args["email"].strip().lower():
        raise Failed(f"the receipt is for {person.get('email')!r}, not {args['email']!r}")
    out.update(entry=entry["seq"], name=person.get("name"), email=person.get("email"), tree_size=checkpoint["size"],
               signatures=checkpoint["signatures"], origin=checkpoint["origin"])
    lines.append(f"receipt ok: the signature of {person.get('name')} <{person.get('email')}> (entry {entry['seq']}, "
                 f"signed {entry['at']}) is one of the {checkpoint['size']} entries of the checkpoint of {checkpoint['origin']}"
                 f" ({checkpoint['signatures']} signatures)")
    return lines


def cmd_consistency(args, out):
    with open(args["path"], encoding="utf-8") as f:
        proof = json.load(f)
    if proof.get("format") != "muster-consistency/1":
        raise Failed("not a muster consistency proof (format muster-consistency/1)")
    key = read_key(args["key"])
    old = parse_checkpoint(proof["old"], key)
    new = parse_checkpoint(proof["new"], key)
    verify_consistency(old["size"], new["size"], old["root"], new["root"], b64list(proof["proof"]))
    out.update(old_size=old["size"], new_size=new["size"])
    return [f"consistent: the checkpoint of {new['size']} entries extends the one of {old['size']} unchanged"]


def json_integer(body, name):
    """The JSON integer member `name` of an entry's body (a JSON text), or None."""
    try:
        value = json.loads(body).get(name)
    except (ValueError, AttributeError, TypeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check_withdrawal(number, entry, kinds, withdrawn):
    """A withdrawal takes one earlier signature out of the count, once, as a duplicate of
    another earlier signature (docs/ledger-format.md, "Withdrawals")."""
    target, original = json_integer(entry.get("body"), "withdraws"), json_integer(entry.get("body"), "duplicate_of")
    if target is None or original is None:
        raise Failed(f"line {number}: a withdrawal without a valid target")
    if kinds.get(target) != "signature" or target >= number:
        raise Failed(f"line {number}: the withdrawal takes out entry {target}, which is not an earlier signature")
    if target in withdrawn:
        raise Failed(f"line {number}: the withdrawal takes out entry {target}, which line {withdrawn[target]} already took out")
    if original == target or kinds.get(original) != "signature" or original >= number:
        raise Failed(f"line {number}: the withdrawal names entry {original} as the signature kept, which is not another earlier signature")
    withdrawn[target] = number


def cmd_log(args, out):
    key = read_key(args["key"])
    with open(args["checkpoint"], encoding="utf-8") as f:
        checkpoint = parse_checkpoint(f.read(), key)
    size = checkpoint["size"]
    leaves = []
    counts = {"signature": 0, "redaction": 0, "optout": 0, "withdrawal": 0}
    kinds = {}  # seq -> kind, for the withdrawals' targets
    withdrawn = {}  # withdrawn signature -> the withdrawal that took it out
    days = {}  # seq -> day, for the signatures whose lines show it
    withheld = 0
    per_day = {}
    previous = None  # the previous line's entry hash, when it was given
    with open(args["path"], encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if len(leaves) == size:
                break
            try:
                entry = json.loads(line)
            except ValueError:
                raise Failed(f"line {number} is not JSON")
            if entry.get("seq") != number:
                raise Failed(f"line {number} holds entry {entry.get('seq')}: entries are missing or out of order")
            kind = entry.get("kind")
            if kind not in counts:
                raise Failed(f"line {number}: unknown kind {kind!r}")
            if "hash" in entry:
                raw = entry_bytes(entry)
                if hashlib.sha256(raw).hexdigest() != entry["hash"]:
                    raise Failed(f"line {number}: the entry's fields do not hash to its hash")
                if number == 1 and entry.get("prev") != "0" * 64:
                    raise Failed("line 1: the first entry does not start the chain")
                if previous is not None and entry.get("prev") != previous:
                    raise Failed(f"line {number}: the entry does not follow the one before it")
                previous = entry["hash"]
                leaves.append(leaf_hash(raw))
                if kind == "signature":
                    day = entry["at"][:10]
                    per_day[day] = per_day.get(day, 0) + 1
                    days[number] = day
                elif kind == "withdrawal":
                    check_withdrawal(number, entry, kinds, withdrawn)
                    target = json_integer(entry["body"], "withdraws")
                    if target in days:  # a signature withdrawn leaves its day's count
                        per_day[days[target]] -= 1
            else:
                try:
                    leaf = bytes.fromhex(entry["leaf_hash"])
                except (KeyError, ValueError):
                    leaf = b""
                if len(leaf) != 32:
                    raise Failed(f"line {number}: neither the entry's fields nor a 32-byte leaf_hash")
                leaves.append(leaf)
                previous = None
                if kind == "signature":
                    withheld += 1
                elif kind == "withdrawal":
                    raise Failed(f"line {number}: a withdrawal given as its leaf hash only: which signature it takes out cannot be checked")
            kinds[number] = kind
            counts[kind] += 1
    if len(leaves) < size:
        raise Failed(f"the log has {len(leaves)} entries; the checkpoint covers {size}")
    root = root_of(leaves)
    if root != checkpoint["root"]:
        raise Failed("the log's entries do not have the checkpoint's root hash: the log is not the one that was signed")
    counted = counts["signature"] - len(withdrawn)
    if checkpoint["signatures"] is not None and checkpoint["signatures"] != counted:
        raise Failed(f"the checkpoint states {checkpoint['signatures']} signatures; its entries hold {counted}"
                     + (f" ({counts['signature']} signature entries, {len(withdrawn)} withdrawn)" if withdrawn else ""))
    out.update(entries=size, signatures=counted, redactions=counts["redaction"], optouts=counts["optout"],
               withdrawn=len(withdrawn), withheld=withheld, per_day=dict(sorted(per_day.items())), origin=checkpoint["origin"])
    aside = f", {len(withdrawn)} withdrawn as duplicates" if withdrawn else ""
    lines = [f"log ok: {size} entries with the root the checkpoint of {checkpoint['origin']} signed",
             f"signatures {counted} (forgotten ones included{aside}), redactions {counts['redaction']}, opt-outs {counts['optout']}"]
    if withheld:
        lines.append(f"{withheld} of the signatures are withheld lines: in the tree, but their kind is the collective's word")
    return lines


def cmd_vectors(args, out):
    """Test aid: verdicts on proof cases (docs/transparency.md, "Testing a verifier")."""
    with open(args["path"], encoding="utf-8") as f:
        cases = json.load(f)
    verdicts = []
    for case in cases:
        h = bytes.fromhex
        try:
            if case["type"] == "inclusion":
                verify_inclusion(case["index"], case["size"], h(case["leaf"]), [h(p) for p in case["proof"]], h(case["root"]))
            else:
                verify_consistency(case["old_size"], case["new_size"], h(case["old_root"]), h(case["new_root"]),
                                   [h(p) for p in case["proof"]])
            verdicts.append(True)
        except Failed:
            verdicts.append(False)
    out["verdicts"] = verdicts
    return [f"{sum(verdicts)} of {len(verdicts)} proofs verify"]


COMMANDS = {
    "checkpoint": (cmd_checkpoint, ["key"]),
    "receipt": (cmd_receipt, []),
    "consistency": (cmd_consistency, ["key"]),
    "log": (cmd_log, ["key", "checkpoint"]),
    "vectors": (cmd_vectors, []),
}


def main(argv):
    if len(argv) < 2 or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        return 64
    command, required = COMMANDS[argv[0]]
    args = {"path": argv[1], "key": None, "email": None, "checkpoint": None, "json": False, "witness": []}
    rest = argv[2:]
    while rest:
        option = rest.pop(0)
        if option == "--json":
            args["json"] = True
        elif option in ("--key", "--email", "--checkpoint") and rest:
            args[option[2:]] = rest.pop(0)
        elif option == "--witness" and rest:
            args["witness"].append(rest.pop(0))
        else:
            print(f"muster_verify.py: unknown option {option}", file=sys.stderr)
            return 64
    for name in required:
        if args[name] is None:
            print(f"muster_verify.py {argv[0]} needs --{name}", file=sys.stderr)
            return 64
    out = {}
    try:
        WITNESSES[:] = [read_key(w) for w in args["witness"]]
        lines = command(args, out)
        if WITNESSES:
            out["witnesses"] = [w[0] for w in WITNESSES]
            lines.append("cosigned by " + ", ".join(w[0] for w in WITNESSES))
        out["ok"] = True
        status = 0
    except Failed as failure:
        out = {"ok": False, "reason": str(failure)}
        lines = [f"FAILED: {failure}"]
        status = 1
    except (OSError, ValueError, KeyError, TypeError) as error:
        out = {"ok": False, "reason": f"unreadable input: {error}"}
        lines = [f"FAILED: unreadable input: {error}"]
        status = 1
    if args["json"]:
        print(json.dumps(out, sort_keys=True))
    else:
        print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
