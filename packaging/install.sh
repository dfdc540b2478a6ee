#!/bin/sh
# Installs muster @VERSION@ from this folder: the binary, its man pages, its bash, zsh and
# fish completions and the example campaign.
#
#   ./install.sh                     into /usr/local (needs root)
#   PREFIX=$HOME/.local ./install.sh into another prefix
#   ./install.sh --uninstall         removes exactly the files this script installs
#
# The Swift runtime is linked into the binary; it needs only C libraries (libcurl, SQLite,
# cmark, libidn2 and what they link), which it checks first, naming the Debian/Ubuntu packages to
# install if one is missing.
set -eu

PREFIX="${PREFIX:-/usr/local}"
HERE="$(cd "$(dirname "$0")" && pwd)"
# soname=Debian package, filled in when the tarball was made.
LIBS="@LIBS@"

say() { printf 'install.sh: %s\n' "$*" >&2; }

# The files, relative to the prefix; the same list installs and uninstalls.
files() {
  (cd "$HERE" && find bin share -type f | LC_ALL=C sort)
}

case "${1:-}" in
  --uninstall)
    files | while read -r f; do rm -f "$PREFIX/$f"; done
    # Folders this left empty (rmdir leaves alone any that holds something else).
    (cd "$HERE" && find bin share -depth -type d) | while read -r d; do
      rmdir "$PREFIX/$d" 2>/dev/null || true
    done
    say "removed muster @VERSION@ from $PREFIX"
    exit 0 ;;
  "") ;;
  -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) say "unknown argument '$1' (use --uninstall, --help, or PREFIX=DIR)"; exit 64 ;;
esac

# The C libraries: ask the loader what the binary would get.
missing=""
if command -v ldd >/dev/null 2>&1; then
  notfound="$(ldd "$HERE/bin/muster" 2>&1 | awk '/not found/ { print $1 }')"
  for lib in $notfound; do
    pkg=""
    for pair in $LIBS; do
      [ "${pair%%=*}" = "$lib" ] && pkg="${pair#*=}"
    done
    missing="$missing ${pkg:-$lib}"
  done
else
  for pair in $LIBS; do
    ldconfig -p 2>/dev/null | grep -q "${pair%%=*} " || missing="$missing ${pair#*=}"
  done
fi
if [ -n "$missing" ]; then
  say "muster needs C libraries this machine lacks; install them first:"
  say "  sudo apt-get install$missing"
  exit 1
fi

# The nearest existing folder of the prefix must be writable.
probe="$PREFIX"
while [ ! -d "$probe" ]; do probe="$(dirname "$probe")"; done
if [ ! -w "$probe" ]; then
  say "cannot write to $probe: run it as root (sudo ./install.sh) or choose PREFIX=DIR"
  exit 1
fi

files | while read -r f; do
  case "$f" in bin/*) mode=0755 ;; *) mode=0644 ;; esac
  mkdir -p "$PREFIX/$(dirname "$f")"
  cp "$HERE/$f" "$PREFIX/$f.tmp.$$"
  chmod "$mode" "$PREFIX/$f.tmp.$$"
  mv -f "$PREFIX/$f.tmp.$$" "$PREFIX/$f"
done
say "installed muster @VERSION@ into $PREFIX ($PREFIX/bin/muster)"
case ":$PATH:" in *":$PREFIX/bin:"*) ;; *) say "note: $PREFIX/bin is not on your PATH" ;; esac
