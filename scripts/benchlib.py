"""Shared by the bench_*.py scripts: writing one section of BENCHMARKS.md."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEADER = "# Benchmarks\n\nEvery figure here was written by `make bench`; rerun it to refresh them.\n\n"


def write_section(name, section):
    """Puts `section` (which starts and ends with its <!-- bench:NAME --> markers) into
    BENCHMARKS.md, replacing the previous one or appending it, and prints it."""
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else HEADER
    pattern = rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->"
    if re.search(pattern, text, flags=re.S):
        text = re.sub(pattern, lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)
    print(section)
