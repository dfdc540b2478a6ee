#!/usr/bin/env python3
"""Keeps the documentation in step with the binary and with itself.

    check_docs.py MUSTER

1. Reference coverage. docs/reference.md has a section (a heading `muster SUB…` in
   backticks) for every command and subcommand that `muster --experimental-dump-help`
   lists. Each section names every option and flag of its command, in every spelling
   (`-c`, `--campaign`), and every positional argument (`<file>`). `--version`, `-h` and
   `--help` are named once, under "Common options".
2. `--json` keys. The commands run on a scratch workspace holding the example campaign:
   init, new, list, check, sign (added and duplicate), import (and --dry-run), dedupe
   (a dry run with addresses, and --withdraw), verify (ok and failed), forget (each outcome), unsubscribe, report (full and --public),
   merge, mail preview, mail send --dry-run and mail status. Every key they print, at
   any depth, is named in backticks in that command's section. Keys of objects that are
   maps (import's `columns` and `reasons`, mail status's `templates`) are data, not
   keys, and only the values' keys are checked. The kiosk, `smtp check`, and a real
   blast need a terminal or a relay; their keys are documented from the source.
3. Links. In README.md, CONTRIBUTING.md and docs/*.md, every relative link points to a
   file in the repository, and every `#anchor` to a heading of that file. No link leaves
   the repository except to a well-known standard (RFCs, Unicode), and no text points at
   files outside it.

Prints one line per problem and exits 1 if there is any. Run by
Tests/MusterCLITests/DocsTests.swift (`make test`).
"""
import json
import os
import pathlib
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import urllib.parse

sys.dont_write_bytecode = True
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from check_cli_docs import commands as command_tree  # the one walk over the dump's command tree

ROOT = pathlib.Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference.md"
SLUG = "fair-rates-translators"
COMMON = {"--version", "-h", "--help"}
MAP_KEYS = {"columns", "reasons", "templates"}
STANDARDS = {"www.rfc-editor.org", "rfc-editor.org", "datatracker.ietf.org", "www.unicode.org", "unicode.org",
             "spec.commonmark.org", "www.w3.org"}
OUTSIDE = re.compile(r"(\.\./shared|/work/shared|steering repository|(?<![\w/-])SPEC\.md)")


# ---------------------------------------------------------------- Markdown helpers

def strip_code_blocks(text):
    """The text with fenced code blocks blanked (line numbers kept)."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            out.append("")
        else:
            out.append("" if fenced else line)
    return "\n".join(out)


def github_slug(heading):
    text = heading.strip().lower()
    text = re.sub(r"<[^>]*>", lambda m: m.group(0)[1:-1], text)  # <slug> inside backticks stays as text
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    seen, out = {}, set()
    for line in strip_code_blocks(path.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = github_slug(m.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def links(text):
    """(line number, target) of every Markdown link outside code blocks and code spans."""
    for number, line in enumerate(strip_code_blocks(text).splitlines(), 1):
        line = re.sub(r"`[^`]*`", "``", line)
        for m in re.finditer(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", line):
            yield number, m.group(1)
        for m in re.finditer(r"<(https?://[^>]+)>", line):
            yield number, m.group(1)


# ---------------------------------------------------------------- 1. reference coverage

def reference_sections(text):
    """Maps 'muster mail send' to the text of its section (up to the next command heading)."""
    sections, current, lines = {}, None, []
    for line in text.splitlines():
        m = re.match(r"^#{2,3}\s+`(muster(?: [a-z-]+)*)`\s*$", line)
        if m or re.match(r"^## ", line):
            if current:
                sections[current] = "\n".join(lines)
            current, lines = (m.group(1) if m else None), []
        elif current:
            lines.append(line)
    if current:
        sections[current] = "\n".join(lines)
    return sections


def named(token, text):
    return re.search(rf"(?<![\w-]){re.escape(token)}(?![\w-])", text) is not None


def check_reference(muster, problems):
    dump = json.loads(subprocess.run([muster, "--experimental-dump-help"], capture_output=True, check=True).stdout)["command"]
    text = REFERENCE.read_text(encoding="utf-8")
    sections = reference_sections(text)
    common = re.search(r"^## Common options\n(.*?)^## ", text, re.S | re.M)
    for token in sorted(COMMON):
        if not common or not named(token, common.group(1)):
            problems.append(f"docs/reference.md: 'Common options' does not name {token}")
    commands = options = 0
    for path, info in command_tree(dump):
        if not info.get("shouldDisplay", True):
            continue
        name = " ".join(path)
        if name == "muster":
            continue
        commands += 1
        section = sections.get(name)
        if section is None:
            problems.append(f"docs/reference.md: no section `{name}` (a heading `## \\`{name}\\``)")
            continue
        for arg in info.get("arguments") or []:
            if not arg.get("shouldDisplay", True):
                continue
            if arg.get("kind") == "positional":
                token = f"<{arg.get('valueName') or arg.get('preferredName', {}).get('name')}>"
                if token not in section:
                    problems.append(f"docs/reference.md: `{name}` does not name its argument {token}")
                continue
            for spelling in arg.get("names") or []:
                token = ("--" if spelling["kind"] == "long" else "-") + spelling["name"]
                if token in COMMON:
                    continue
                options += 1
                if not named(token, section):
                    problems.append(f"docs/reference.md: `{name}` does not name its option {token}")
    if commands < 10 or options < 20:
        problems.append(f"the dump of {muster} describes {commands} commands and {options} options: nothing to check")
    return sections, commands, options


# ---------------------------------------------------------------- 2. --json keys

def keys_of(value, parent=None):
    out = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if parent not in MAP_KEYS:
                out.add(key)
            out |= keys_of(item, key)
    elif isinstance(value, list):
        for item in value:
            out |= keys_of(item, parent)
    return out


def check_json_keys(muster, sections, problems):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSTER_")}
    env["NO_COLOR"] = "1"
    with tempfile.TemporaryDirectory(prefix="muster-docs-") as tmp:
        tmp = pathlib.Path(tmp)
        outputs = []  # (command, JSON object)

        def run(command, args, cwd, now="2026-11-28T12:00:00Z", ok=(0,)):
            proc = subprocess.run([muster, *args, "--json"], cwd=cwd, capture_output=True, text=True,
                                  env=dict(env, MUSTER_NOW=now))
            if proc.returncode not in ok:
                problems.append(f"`muster {' '.join(args)} --json` exited {proc.returncode}: {proc.stderr.strip()}")
                return None
            try:
                value = json.loads(proc.stdout)
            except ValueError:
                problems.append(f"`muster {' '.join(args)} --json` printed no JSON: {proc.stdout[:200]!r}")
                return None
            outputs.append((command, value))
            return value

        ws, other = tmp / "ws", tmp / "other"
        for folder in (ws, other):
            run("muster init", ["init", str(folder)], tmp)
            shutil.copytree(ROOT / "campaigns" / SLUG, folder / "campaigns" / SLUG)
        sheet = f"campaigns/{SLUG}/signatures.csv"
        run("muster check", ["check"], ws)
        run("muster import", ["import", sheet, "--dry-run"], ws)
        with open(ws / "bad.csv", "w") as f:
            f.write("name,email,region\nAna,not-an-address,Lyon\n")
        run("muster import", ["import", "bad.csv"], ws)
        run("muster import", ["import", sheet, "--source", "sign-up sheet"], ws, now="2026-11-27T12:00:00Z")
        run("muster sign", ["sign", "--name", "Ana Lima", "--email", "ana@example.org", "--field", "region=Lyon"], ws)
        run("muster sign", ["sign", "--name", "Ana", "--email", "ANA@example.org", "--field", "region=Lyon"], ws)
        run("muster list", ["list"], ws)
        run("muster verify", ["verify"], ws)
        run("muster report", ["report"], ws)
        run("muster report", ["report", "--public"], ws)
        run("muster mail preview", ["mail", "preview", "thank-you"], ws)
        run("muster mail send", ["mail", "send", "thank-you", "--dry-run", "--out", str(tmp / "eml")], ws)
        run("muster mail status", ["mail", "status"], ws)
        run("muster unsubscribe", ["unsubscribe", "someone@example.org"], ws)
        run("muster unsubscribe", ["unsubscribe", "someone@example.org"], ws)
        # dedupe: two spellings of one mailbox, let in while keep_tags was on
        settings = (ws / "muster.yaml").read_text(encoding="utf-8")
        (ws / "muster.yaml").write_text(settings + "\ndedupe:\n  keep_tags: true\n", encoding="utf-8")
        run("muster sign", ["sign", "--name", "Ana", "--email", "ana+petition@example.org", "--field", "region=Lyon",
                            "--by", "Sam"], ws)
        (ws / "muster.yaml").write_text(settings, encoding="utf-8")
        run("muster dedupe", ["dedupe", "--withdraw", "--dry-run", "--show-addresses"], ws)
        run("muster dedupe", ["dedupe", "--withdraw"], ws)
        run("muster verify", ["verify"], ws)
        run("muster forget", ["forget", "ana@example.org"], ws)
        run("muster forget", ["forget", "ana@example.org"], ws)
        run("muster forget", ["forget", "nobody@example.org"], ws, ok=(1,))
        # merge: another laptop's ledger, with one signer of its own and one unsubscribe
        run("muster sign", ["sign", "--name", "Bo Chen", "--email", "bo@example.org", "--field", "region=Paris"], other)
        run("muster unsubscribe", ["unsubscribe", "bo@example.org"], other)
        other_ledger = other / "campaigns" / SLUG / "ledger.sqlite"
        run("muster merge", ["merge", str(other_ledger), "--dry-run"], ws)
        # verify, failed: a tampered copy
        db = sqlite3.connect(other_ledger)
        db.execute("UPDATE entries SET at = '2020-01-01T00:00:00.000Z' WHERE seq = 1")
        db.commit()
        db.close()
        run("muster verify", ["verify"], other, ok=(1,))
        run("muster new", ["new", "rent-freeze", "--title", "Rents", "--goal", "10"], ws)

        checked = set()
        for command, value in outputs:
            section = sections.get(command)
            if section is None:
                continue  # reported by check_reference
            for key in sorted(keys_of(value)):
                if (command, key) in checked:
                    continue
                checked.add((command, key))
                if f"`{key}`" not in section:
                    problems.append(f"docs/reference.md: `{command} --json` prints the key \"{key}\", which its section does not name")
        if len(checked) < 60:
            problems.append(f"only {len(checked)} --json keys were seen: the commands did not run as expected")
        return len(checked)


# ---------------------------------------------------------------- 3. links

def check_links(problems):
    files = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
    count = 0
    for path in files:
        rel = path.relative_to(ROOT)
        if not path.exists():
            problems.append(f"{rel} does not exist")
            continue
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), 1):
            m = OUTSIDE.search(line)
            if m:
                problems.append(f"{rel}:{number}: points outside the repository ({m.group(0)!r})")
        for number, target in links(text):
            count += 1
            where = f"{rel}:{number}"
            url = urllib.parse.urlparse(target)
            if url.scheme in ("http", "https"):
                if url.hostname not in STANDARDS:
                    problems.append(f"{where}: a link leaves the repository for {target} (only standards such as RFCs may)")
                continue
            if url.scheme:
                problems.append(f"{where}: a {url.scheme}: link ({target})")
                continue
            file_part, _, fragment = target.partition("#")
            linked = (path.parent / urllib.parse.unquote(file_part)).resolve() if file_part else path
            try:
                linked.relative_to(ROOT)
            except ValueError:
                problems.append(f"{where}: {target} is outside the repository")
                continue
            if not linked.exists():
                problems.append(f"{where}: {target}: no such file")
                continue
            if fragment:
                if linked.suffix != ".md":
                    problems.append(f"{where}: {target}: an anchor into a file that is not Markdown")
                elif fragment not in anchors(linked):
                    problems.append(f"{where}: {target}: {linked.relative_to(ROOT)} has no heading #{fragment}")
    return len(files), count


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    muster = str(pathlib.Path(sys.argv[1]).resolve())
    problems = []
    sections, commands, options = check_reference(muster, problems)
    keys = check_json_keys(muster, sections, problems)
    files, count = check_links(problems)
    for problem in problems:
        print(f"check_docs: {problem}", file=sys.stderr)
    if problems:
        print(f"check_docs: {len(problems)} problem(s)", file=sys.stderr)
        sys.exit(1)
    print(f"check_docs: {commands} commands and {options} option spellings in docs/reference.md, "
          f"{keys} --json keys named; {count} links in {files} files resolve", file=sys.stderr)


if __name__ == "__main__":
    main()
