#!/usr/bin/env python3
"""Checks that man pages and shell completions are in step with muster's commands.

    check_cli_docs.py MUSTER MANDIR BASH_SCRIPT ZSH_SCRIPT FISH_SCRIPT

The commands are what the binary itself says it has (`muster --experimental-dump-help`,
swift-argument-parser's description of every command, subcommand, option and flag). For
every command, however deep:

- its man page MANDIR/muster[.SUB…].1[.gz] exists, renders with `man` without a single
  warning, and the rendered text names its abstract, each of its subcommands and each of
  its options and flags (every spelling, long and short);
- bash: completing `muster SUB… ` offers each subcommand, and `muster SUB… -` offers each
  option and flag (the completion function is run as bash runs it, with COMP_WORDS etc.);
- fish: `complete -C 'muster SUB… '` and `complete -C 'muster SUB… -'` offer the same;
- zsh: the script parses (`zsh -n`), and the completion function for the command
  (`_muster_SUB…`) lists each subcommand and each option.

Prints one line per problem and exits 1 if there is any; otherwise prints a summary.
"""
import gzip, json, os, pathlib, re, subprocess, sys, tempfile


def commands(info, path=()):
    """Yields (path, command info) for the command and all its subcommands, depth first."""
    path = path + (info["commandName"],)
    yield path, info
    for sub in info.get("subcommands") or []:
        yield from commands(sub, path)


def visible_subcommands(info):
    return [s["commandName"] for s in info.get("subcommands") or [] if s.get("shouldDisplay", True)]


def option_spellings(info):
    """Every displayed option's and flag's spellings: ['--name', '-n', …]."""
    out = []
    for arg in info.get("arguments") or []:
        if arg.get("kind") == "positional" or not arg.get("shouldDisplay", True):
            continue
        for name in arg.get("names") or []:
            kind, n = name["kind"], name["name"]
            out.append(("--" if kind == "long" else "-") + n)
    return out


def help_subcommands(muster, path):
    """The subcommands `muster SUB… --help` lists: a second, independent reading of the
    command tree, so that a broken dump cannot make every check pass vacuously."""
    out = subprocess.run([muster, *path[1:], "--help"], capture_output=True, text=True, check=True).stdout
    names, inside = [], False
    for line in out.splitlines():
        if line.startswith("SUBCOMMANDS:"):
            inside = True
        elif inside and re.match(r"^  \S", line) and not line.strip().startswith("See "):
            names.append(line.split()[0])
        elif inside and line and not line.startswith(" "):
            inside = False
    return names


def render_man(page):
    """Renders a man page to plain text; returns (text, warnings)."""
    env = dict(os.environ, MANWIDTH="200", LANG="C.UTF-8", MAN_KEEP_FORMATTING="")
    proc = subprocess.run(["man", "--warnings", "-l", "-P", "cat", str(page)], capture_output=True, env=env)
    text = re.sub(r".\x08", "", proc.stdout.decode("utf-8", "replace"))
    # groff's hyphen and minus glyphs, back to ASCII
    text = text.replace("\u2010", "-").replace("\u2212", "-").replace("\u2011", "-")
    warnings = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        warnings = (warnings + f"\n(man exited {proc.returncode})").strip()
    return text, warnings


def shell_env(muster):
    """The shells run with the binary's folder first on PATH, as a user who installed it has."""
    folder = str(pathlib.Path(muster).resolve().parent)
    return dict(os.environ, PATH=folder + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"))


def bash_complete(script, words, env):
    """What bash offers when the command line is `words` with the cursor at its end."""
    line = " ".join(words)
    prog = r'''
source "$1"; shift
spec="$(complete -p muster)" || exit 3
fn="$(sed -n 's/.* -F \([^ ]*\) .*/\1/p' <<<"$spec")"
[ -n "$fn" ] || exit 4
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMP_TYPE=9
"$fn" muster "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
'''
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", prog, "bash", str(script), *words],
                          capture_output=True, text=True, timeout=30, env=env)
    if proc.returncode != 0:
        return None, f"bash exited {proc.returncode} completing '{line}': {proc.stderr.strip()}"
    return set(proc.stdout.split()), None


def fish_complete(script, line, env):
    proc = subprocess.run(["fish", "--no-config", "-c", f"source {shell_quote(str(script))}; complete -C {shell_quote(line)}"],
                          capture_output=True, text=True, timeout=30, env=env)
    if proc.returncode != 0:
        return None, f"fish exited {proc.returncode} completing '{line}': {proc.stderr.strip()}"
    return {l.split("\t")[0] for l in proc.stdout.splitlines()}, None


def shell_quote(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def zsh_functions(text):
    """Maps each function name in the zsh script to its body."""
    funcs, name, body = {}, None, []
    for line in text.splitlines():
        m = re.match(r"^(_[A-Za-z0-9_]+)\(\)\s*\{", line)
        if m:
            name, body = m.group(1), []
            continue
        if name and line.startswith("}"):
            funcs[name] = "\n".join(body)
            name = None
            continue
        if name:
            body.append(line)
    return funcs


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__.split("\n\n")[1])
    muster, mandir, bash, zsh, fish = sys.argv[1:]
    mandir = pathlib.Path(mandir)
    dump = subprocess.run([muster, "--experimental-dump-help"], capture_output=True, check=True).stdout
    root = json.loads(dump)["command"]
    problems = []
    zsh_text = pathlib.Path(zsh).read_text()
    zproc = subprocess.run(["zsh", "-n", zsh], capture_output=True, text=True)
    if zproc.returncode != 0:
        problems.append(f"zsh: {zsh} does not parse: {zproc.stderr.strip()}")
    zfuncs = zsh_functions(zsh_text)
    env = shell_env(muster)
    checked = options = 0
    for path, info in commands(root):
        if not info.get("shouldDisplay", True):
            continue
        checked += 1
        name = " ".join(path)
        subs = visible_subcommands(info)
        opts = option_spellings(info)
        # (`muster help --help` shows the root's help: the help command has no subcommands.)
        listed = help_subcommands(muster, path) if path[1:] != ("help",) else []
        if sorted(listed) != sorted(s for s in subs if s != "help"):
            problems.append(f"`{name} --help` lists subcommands {listed}, the dump {subs}")
        options += len(opts)

        # Man page.
        stem = ".".join(path) + ".1"
        page = next((p for p in (mandir / (stem + ".gz"), mandir / stem) if p.exists()), None)
        if page is None:
            problems.append(f"man: `{name}` has no page {stem}[.gz] in {mandir}")
        else:
            text, warnings = render_man(page)
            if warnings:
                problems.append(f"man: {page.name} renders with warnings: {warnings}")
            flat = " ".join(text.split())
            abstract = " ".join((info.get("abstract") or "").split())
            if abstract and abstract not in flat:
                problems.append(f"man: {page.name} lacks `{name}`'s abstract: {abstract!r}")
            for s in subs:
                if not re.search(rf"(?<![\w-]){re.escape(s)}(?![\w-])", text):
                    problems.append(f"man: {page.name} does not mention subcommand `{name} {s}`")
            for o in opts:
                if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text):
                    problems.append(f"man: {page.name} does not document `{name} {o}`")

        # bash
        words = list(path)
        got, err = bash_complete(bash, words + [""], env)
        if err:
            problems.append(f"bash: {err}")
        else:
            for s in subs:
                if s not in got:
                    problems.append(f"bash: `{name} <TAB>` does not offer `{s}`")
        got, err = bash_complete(bash, words + ["-"], env)
        if err:
            problems.append(f"bash: {err}")
        else:
            for o in opts:
                if o not in got:
                    problems.append(f"bash: `{name} -<TAB>` does not offer `{o}`")

        # fish
        got, err = fish_complete(fish, name + " ", env)
        if err:
            problems.append(f"fish: {err}")
        else:
            for s in subs:
                if s not in got:
                    problems.append(f"fish: `{name} <TAB>` does not offer `{s}`")
        got, err = fish_complete(fish, name + " -", env)
        if err:
            problems.append(f"fish: {err}")
        else:
            for o in opts:
                if o not in got:
                    problems.append(f"fish: `{name} -<TAB>` does not offer `{o}`")

        # zsh
        fname = "_" + "_".join(p.replace("-", "_") for p in path)
        body = zfuncs.get(fname)
        if body is None:
            problems.append(f"zsh: no completion function {fname} for `{name}`")
        else:
            for s in subs:
                if not re.search(rf"['\"]{re.escape(s)}:", body):
                    problems.append(f"zsh: {fname} does not list subcommand `{s}`")
            for o in opts:
                if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", body):
                    problems.append(f"zsh: {fname} does not list `{o}`")

    if checked < 2 or options == 0:
        problems.append(f"the dump of `{muster}` describes {checked} commands and {options} options: nothing to check")
    for p in problems:
        print(f"check_cli_docs: {p}", file=sys.stderr)
    if problems:
        print(f"check_cli_docs: {len(problems)} problem(s) in {checked} commands", file=sys.stderr)
        sys.exit(1)
    print(f"check_cli_docs: {checked} commands and {options} option spellings: each has its man page "
          f"(rendered without warnings) and completes in bash, zsh and fish", file=sys.stderr)


if __name__ == "__main__":
    main()
