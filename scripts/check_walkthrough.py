#!/usr/bin/env python3
"""Runs the README's walkthrough exactly as written, as a newcomer would.

    check_walkthrough.py MUSTER [--examples DIR]

Takes the shell block between `<!-- walkthrough:begin -->` and `<!-- walkthrough:end -->`
in README.md and runs it with bash (`set -euo pipefail`, so the first failing command
fails the check). It runs from a copy of the repository's tracked files (a fresh
clone, as far as the walkthrough can tell), with HOME set to an empty temporary folder
and the folder of MUSTER first on the PATH. Then it checks what the walkthrough says it
did: the sheet's rows are all in the ledger, the duplicate was not added, the forget
kept the count, and the ledger verifies. Run by Tests/MusterCLITests/DocsTests.swift
(`make test`) with the binary under test.

MUSTER may be any muster binary: scripts/test-package runs this check with the one the
.deb or the tarball installed. There, --examples DIR gives the folder of example
campaigns the package installed (/usr/share/doc/muster/examples): the walkthrough's
`EXAMPLE=` line is pointed at DIR/fair-rates-translators, as its comment tells a reader
with the package to do, and it runs from an empty folder instead of a clone.
"""
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent


def walkthrough():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- walkthrough:begin -->\s*```sh\n(.*?)```\s*<!-- walkthrough:end -->", text, re.S)
    if not match:
        sys.exit("check_walkthrough: README.md has no ```sh block between <!-- walkthrough:begin --> and <!-- walkthrough:end -->")
    return match.group(1)


def fresh_clone(target):
    """The files git tracks (the working tree's versions), as a clone would have them."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if listed.returncode == 0 and listed.stdout:
        names = [n for n in listed.stdout.decode().split("\0") if n]
    else:  # not a git checkout (a source tarball): everything but build output
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                 if p.is_file() and not any(part.startswith(".build") for part in p.relative_to(ROOT).parts)]
    for name in names:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


SLUG = "fair-rates-translators"


def arguments():
    """(MUSTER, the examples folder or None), or the usage line and exit 2."""
    args = sys.argv[1:]
    examples = None
    if len(args) == 3 and args[1] == "--examples":
        examples = pathlib.Path(args[2]).resolve()
        args = args[:1]
    if len(args) != 1 or args[0].startswith("-"):
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        sys.exit(2)
    muster = pathlib.Path(args[0]).resolve()
    if not (muster.is_file() and os.access(muster, os.X_OK)):
        sys.exit(f"check_walkthrough: {args[0]} is not an executable file")
    if examples is not None and not (examples / SLUG / "campaign.yaml").is_file():
        sys.exit(f"check_walkthrough: {examples} has no {SLUG}/campaign.yaml")
    return muster, examples


def with_examples(script, examples):
    """The walkthrough with its EXAMPLE= line pointed at the installed examples."""
    line = re.compile(r"^EXAMPLE=.*$", re.M)
    if len(line.findall(script)) != 1:
        sys.exit("check_walkthrough: the walkthrough has no single EXAMPLE=… line for --examples to set")
    return line.sub(lambda _: "EXAMPLE=" + shlex.quote(str(examples / SLUG)), script)


def main():
    muster, examples = arguments()
    script = walkthrough()
    if examples is not None:
        script = with_examples(script, examples)
    with tempfile.TemporaryDirectory(prefix="muster-walkthrough-") as tmp:
        tmp = pathlib.Path(tmp)
        clone, home = tmp / "muster", tmp / "home"
        clone.mkdir()
        home.mkdir()
        if examples is None:
            fresh_clone(clone)
        sheet = (examples / SLUG if examples is not None else clone / "campaigns" / SLUG) / "signatures.csv"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MUSTER_")}
        env.update(HOME=str(home), PATH=f"{muster.parent}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}", NO_COLOR="1")
        proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", "set -euo pipefail -x\n" + script],
                              cwd=clone, env=env, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            print(proc.stdout[-4000:], file=sys.stderr)
            print(proc.stderr[-4000:], file=sys.stderr)
            sys.exit(f"check_walkthrough: the README's walkthrough failed (exit {proc.returncode}); its last command is above")

        ws = home / "fair-rates"
        problems = []

        def json_of(*args):
            out = subprocess.run([str(muster), *args, "--json"], cwd=ws, env=env, capture_output=True, text=True)
            return json.loads(out.stdout)

        sheet_rows = len(sheet.read_text().splitlines()) - 1
        report = json_of("verify", "-c", "fair-rates-translators")
        if not report.get("ok"):
            problems.append(f"the example campaign's ledger does not verify: {report}")
        # Every row of the sheet is in the ledger now (a second import adds nothing).
        imported = json_of("import", "-c", "fair-rates-translators", "campaigns/fair-rates-translators/signatures.csv", "--dry-run")
        if imported.get("added") != 0 or imported.get("duplicates", 0) + imported.get("rejected", 0) != sheet_rows:
            problems.append(f"the sheet's {sheet_rows} rows are not all in the ledger: a dry-run import again says {imported}")
        if report.get("redacted") != 1:
            problems.append(f"the walkthrough forgets one signer, but verify reports {report.get('redacted')} forgotten")
        listing = json_of("list")
        counts = {c["slug"]: c.get("count") for c in listing.get("campaigns", [])}
        if counts.get("rent-freeze") != 1 or counts.get("fair-rates-translators") != report.get("count"):
            problems.append(f"`muster list` says {counts}, verify {report.get('count')}")
        for path in ("report.html", "exports/signers.csv", "exports/counts.csv", "mail-preview/00001.eml"):
            if not (ws / path).is_file():
                problems.append(f"the walkthrough should have written {path}")
        for problem in problems:
            print(f"check_walkthrough: {problem}", file=sys.stderr)
        if problems:
            sys.exit(1)
        commands = sum(1 for line in script.splitlines() if line.strip().startswith("muster "))
        print(f"check_walkthrough: the README's walkthrough ran as written ({commands} muster commands"
              f"{'' if examples is None else ', examples from ' + str(examples)}); "
              f"{report['count']} signatures, ledger verified", file=sys.stderr)


if __name__ == "__main__":
    main()
