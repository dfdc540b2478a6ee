#!/usr/bin/env python3
"""The independent reference for muster's domain names (Tests/MusterKitTests/IDNAReferenceTests.swift).

Python's `idna` package, from its source distribution pinned by version and SHA-256 and
fetched by `MUSTER_SETUP_TEST=1 bash scripts/setup` into the reference cache
($MUSTER_REFERENCE_CACHE, default ~/.cache/muster). The package is imported from that
verified file itself (unpacked into a temporary folder removed on exit), so the
reference is exactly the pinned code whatever else is installed.

    idna_reference.py vectors
        Unicode's UTS #46 conformance cases (IdnaTestV2.txt in the sdist), parsed by the
        sdist's own tests/test_idna_uts46.py, each with the reference's own answer.
    idna_reference.py differential SEED COUNT
        COUNT generated domain names (seeded), each with the reference's answer.

Both print one JSON document on stdout. A missing or altered sdist is an error (exit 1),
never an empty answer: the tests fail rather than skip.
"""
import hashlib, json, os, pathlib, random, sys, tarfile, tempfile

VERSION = "3.10"
SHA256 = "12f65c9b470abda6dc35cf8e63cc574b1c52b11df2c86030af0ac09b01b13ea9"


def cache_dir():
    explicit = os.environ.get("MUSTER_REFERENCE_CACHE")
    if explicit:
        return pathlib.Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "muster"


def load_reference(workdir):
    sdist = cache_dir() / f"idna-{VERSION}.tar.gz"
    if not sdist.is_file():
        sys.exit(f"idna_reference: {sdist} is missing; run `MUSTER_SETUP_TEST=1 bash scripts/setup` (make test does)")
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != SHA256:
        sys.exit(f"idna_reference: {sdist} has SHA-256 {digest}, expected {SHA256}; delete it and run scripts/setup again")
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and ("/idna/" in m.name or "/tests/" in m.name)]
        tar.extractall(workdir, members=members, filter="data")
    root = pathlib.Path(workdir) / f"idna-{VERSION}"
    sys.path.insert(0, str(root))
    import idna  # noqa: E402
    if idna.__version__ != VERSION or not idna.__file__.startswith(str(root)):
        sys.exit(f"idna_reference: imported idna {idna.__version__} from {idna.__file__}, not the pinned sdist")
    return root, idna


def reference_answer(idna, domain):
    """UTS #46 ToASCII, non-transitional, STD3 rules, as muster applies them."""
    try:
        ascii = idna.encode(domain, uts46=True, std3_rules=True, transitional=False).decode("ascii")
        return {"ascii": ascii, "unicode": idna.decode(ascii), "error": None}
    except (idna.IDNAError, UnicodeError, ValueError) as error:
        return {"ascii": None, "unicode": None, "error": str(error)}


def vectors(root, idna):
    sys.path.insert(0, str(root))
    from tests import test_idna_uts46 as upstream  # the reference's own parser and skip list
    cases = []
    with open(root / "tests" / "IdnaTestV2.txt", "rb") as handle:
        for line, fields in upstream.parse_idna_test_table(handle):
            source, to_unicode, to_unicode_status, to_ascii, to_ascii_status = fields[:5]
            source = upstream.unicode_fixup(source)
            to_unicode = upstream.unicode_fixup(to_unicode) or source
            to_unicode_status = to_unicode_status or "[]"
            to_ascii = upstream.unicode_fixup(to_ascii) or to_unicode
            to_ascii_status = to_ascii_status or to_unicode_status
            case = {"line": line, "source": source, "status": to_ascii_status,
                    "expected": to_ascii if to_ascii_status == "[]" else None,
                    "reference_skips": source in upstream._SKIP_TESTS}
            case["reference"] = reference_answer(idna, source)
            cases.append(case)
    return {"version": VERSION, "file": "IdnaTestV2.txt", "cases": cases}


# Generated domain names: every class the issue names, from a seeded generator.
LATIN = "abcdefghijklmnopqrstuvwxyz"
ACCENTED = "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßœłđħŋ"
SCRIPTS = {
    "greek": "αβγδεζηθικλμνξοπρστυφχψως",
    "cyrillic": "абвгдежзийклмнопрстуфхцчшщъыьэюя",
    "cjk": "中国例日本語漢字東京北京書店",
    "kana": "あいうえおかきくけこテストアイウエオ",
    "hangul": "한국어도메인테스트",
    "arabic": "مثالعربيكتب",
    "hebrew": "אבגדהוזחטיכלמנסעפצקרשת",
    "devanagari": "कखगघचछजझटठडढणतथदधनपफबभमयरलवशषसह",
    "thai": "กขคงจฉชซญดตถทธนบปผพฟภมยรลวศษสหอฮ",
    "georgian": "აბგდევზთიკლმნოპჟრსტუფქღყშჩცძწჭხჯჰ",
    "armenian": "աբգդեզէըթժիլխծկհձղճմյնշոչպջռսվտրցւփքօֆ",
}
COMPAT = ["ⅷ", "Ⅸ", "ℌ", "①", "㎒", "ﬁ", "²", "µ", "ſ", "ǆ", "Ǳ", "ℓ", "™", "㍱", "ｶ", "ﾃ", "\u00ad", "\ufe0f", "\u200b", "Ⅻ", "⑴", "½", "℀"]
SYMBOLS = ["☃", "≠", "≮", "≯", "$", "_", "!", "~", "♥", "€", "©", "\u2028", " ", "@", "\u0000", "\u0085", "\u202e", "\U0001F600", "\u2615"]
DOTS = [".", "\u3002", "\uff0e", "\uff61"]
CONTEXTO = ["l\u00b7l", "a\u00b7b", "\u0375α", "α\u0375", "א\u05f3", "\u05f4ב", "テ\u30fbス", "a\u30fbb", "١٢", "١۲"]


def fullwidth(text, rnd):
    out = []
    for ch in text:
        if rnd.random() < 0.6 and ("a" <= ch <= "z" or "0" <= ch <= "9" or "A" <= ch <= "Z"):
            out.append(chr(ord(ch) + 0xFEE0))
        else:
            out.append(ch)
    return "".join(out)


def ascii_label(rnd, low=1, high=12):
    text = "".join(rnd.choice(LATIN + "0123456789") for _ in range(rnd.randint(low, high)))
    if len(text) > 2 and rnd.random() < 0.2:
        i = rnd.randrange(1, len(text) - 1)
        text = text[:i] + "-" + text[i + 1:]
    return text.upper() if rnd.random() < 0.2 else text


def script_label(rnd, script, low=1, high=8):
    return "".join(rnd.choice(SCRIPTS[script]) for _ in range(rnd.randint(low, high)))


def tld(rnd):
    return rnd.choice(["org", "com", "example", "de", "jp", "рф", "中国", "ελ", "ΕΛ", "xn--p1ai", "テスト"])


def generate(rnd, idna, kind):
    if kind == "ascii":
        return ".".join([ascii_label(rnd) for _ in range(rnd.randint(1, 3))] + [tld(rnd)])
    if kind == "fullwidth":
        return fullwidth(".".join([ascii_label(rnd) for _ in range(rnd.randint(1, 3))] + ["org"]), rnd)
    if kind == "compat":
        label = list(ascii_label(rnd, 2, 8))
        for _ in range(rnd.randint(1, 2)):
            label.insert(rnd.randrange(len(label) + 1), rnd.choice(COMPAT))
        return "".join(label) + "." + tld(rnd)
    if kind == "dots":
        labels = [rnd.choice([ascii_label(rnd), script_label(rnd, rnd.choice(list(SCRIPTS)))]) for _ in range(rnd.randint(2, 4))]
        text = labels[0]
        for label in labels[1:]:
            text += rnd.choice(DOTS) + label
        if rnd.random() < 0.15:
            text += rnd.choice(DOTS)  # the root label
        if rnd.random() < 0.1:
            text = text.replace(".", "..", 1)
        return text
    if kind == "scripts":
        script = rnd.choice(list(SCRIPTS))
        label = script_label(rnd, script)
        if script in ("greek", "cyrillic") and rnd.random() < 0.3:
            label = label.upper()
        if rnd.random() < 0.3:
            label = "".join(rnd.choice(ACCENTED + LATIN) for _ in range(rnd.randint(2, 9)))
        return label + "." + tld(rnd)
    if kind == "mixed":
        a, b = rnd.sample(["latin", "greek", "cyrillic", "cjk", "kana", "hangul", "accented"], 2)
        def part(name):
            if name == "latin":
                return ascii_label(rnd, 2, 5)
            if name == "accented":
                return "".join(rnd.choice(ACCENTED) for _ in range(rnd.randint(1, 3)))
            return script_label(rnd, name, 1, 4)
        return part(a) + part(b) + "." + tld(rnd)
    if kind == "bidi":
        rtl = rnd.choice(["arabic", "hebrew"])
        label = script_label(rnd, rtl, 1, 6)
        shape = rnd.randrange(7)
        if shape == 0:
            label = label + rnd.choice("0123456789")
        elif shape == 1:
            label = rnd.choice("0123456789") + label  # rule 1: must start with R or AL
        elif shape == 2:
            label = label + rnd.choice("٠١٢٣٤٥٦٧٨٩") + rnd.choice("0123456789")  # rule 4
        elif shape == 3:
            label = label + ascii_label(rnd, 1, 3)  # rule 2: no L in an RTL label
        elif shape == 4:
            return ascii_label(rnd) + "." + label + "." + tld(rnd)
        elif shape == 5:
            label = label + rnd.choice("٠١٢٣٤٥٦٧٨٩")
        return label + "." + rnd.choice(["com", "org", "مصر", "ישראל"])
    if kind == "long":
        if rnd.random() < 0.5:
            label = "".join(rnd.choice(LATIN) for _ in range(rnd.randint(58, 68)))
            if rnd.random() < 0.5:
                label = fullwidth(label, rnd)
        else:
            label = script_label(rnd, rnd.choice(["cjk", "cyrillic", "greek", "hangul"]), 14, 40)
        labels = [label]
        if rnd.random() < 0.2:
            labels = [ascii_label(rnd, 50, 63) for _ in range(5)]
        return ".".join(labels + [tld(rnd)])
    if kind == "xn":
        script = rnd.choice(list(SCRIPTS))
        ulabel = script_label(rnd, script)
        try:
            alabel = idna.encode(ulabel, uts46=True).decode("ascii").split(".")[0]
        except (idna.IDNAError, UnicodeError):
            alabel = "xn--" + ascii_label(rnd, 3, 10)
        choice = rnd.randrange(4)
        if choice == 0:
            alabel = alabel.upper()
        elif choice == 1:
            alabel = alabel[:-1] + rnd.choice(LATIN)  # probably corrupt
        elif choice == 2:
            alabel = "xn--" + ascii_label(rnd, 2, 10).lower()
        return alabel + "." + tld(rnd)
    if kind == "invalid":
        label = list(ascii_label(rnd, 2, 8))
        label.insert(rnd.randrange(len(label) + 1), rnd.choice(SYMBOLS))
        text = "".join(label) + "." + tld(rnd)
        shape = rnd.randrange(6)
        if shape == 0:
            return "-" + text
        if shape == 1:
            return ascii_label(rnd, 2, 5) + "-." + tld(rnd)
        if shape == 2:
            return ascii_label(rnd, 2, 2) + "--" + ascii_label(rnd, 1, 4) + "." + tld(rnd)  # 3rd-4th hyphens
        if shape == 3:
            return "\u00ad\u200b." + tld(rnd)  # maps to nothing
        if shape == 4:
            return "\u0301" + script_label(rnd, "greek") + "." + tld(rnd)  # leading combining mark
        return text
    if kind == "joiners":
        base = rnd.choice(["क्\u200dष", "क्\u200cष", "a\u200db", "a\u200cb", "\u200dab", "ab\u200c", "ل\u200cا", "ک\u200cت"])
        return base + "." + tld(rnd)
    if kind == "newer":
        # Khitan Small Script (Unicode 13) and Toto (Unicode 14): newer than libidn2 2.3.3's IDNA table.
        block = rnd.choice([(0x18B00, 0x18CD5), (0x1E290, 0x1E2AD)])
        return "".join(chr(rnd.randint(*block)) for _ in range(rnd.randint(1, 4))) + "." + tld(rnd)
    if kind == "contexto":
        return rnd.choice(CONTEXTO) + "." + tld(rnd)
    raise ValueError(kind)


KINDS = ["ascii", "fullwidth", "compat", "dots", "scripts", "mixed", "bidi", "long", "xn", "invalid", "joiners", "contexto", "newer"]


def differential(idna, seed, count):
    rnd = random.Random(seed)
    cases = []
    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        domain = generate(rnd, idna, kind)
        answer = reference_answer(idna, domain)
        cases.append({"kind": kind, "domain": domain, **answer})
    return {"version": VERSION, "seed": seed, "cases": cases}


def main(argv):
    if len(argv) < 2 or argv[1] not in ("vectors", "differential"):
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory(prefix="muster-idna-") as workdir:
        root, idna = load_reference(workdir)
        if argv[1] == "vectors":
            result = vectors(root, idna)
        else:
            result = differential(idna, int(argv[2]), int(argv[3]))
    json.dump(result, sys.stdout, ensure_ascii=True)


if __name__ == "__main__":
    main(sys.argv)
