#!/usr/bin/env bash
# How Tests/Fixtures/ledger-v3/ was made. Tests never run this script: they use the
# committed files. It is a ledger of format 3 as the first release with mailbox keys
# wrote it (commit bb1ef5c: mailbox key version 2, a key row for every signature that
# counts): signatures, a +tag variant that counts, a group withdrawn by `muster dedupe`,
# a forgotten signer, an import. Today's muster must open it, verify it unchanged, and
# on its first write remake the keys in its own way without changing the count.
#
#   MUSTER=/path/to/muster-built-at-bb1ef5c bash Tests/Fixtures/ledger-v3/make.sh
#
# Needs python3 and sqlite3. Made-up addresses only: no real personal data.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
muster=${MUSTER:?set MUSTER to a muster binary built at commit bb1ef5c}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$work"
"$muster" init ws >/dev/null
cd ws
"$muster" new keys --title "Keys" --goal 20 >/dev/null
cat > campaigns/keys/campaign.yaml <<'YAML'
title: Keys
goal: 20
fields:
  - name: region
    required: true
    personal: false
YAML
settings=$(cat muster.yaml)

minute=0
sign() {
  local email=$1; shift
  MUSTER_NOW=$(printf '2026-12-01T%02d:%02d:00Z' $((9 + minute / 60)) $((minute % 60))) \
    "$muster" sign --name "Fixture Signer" --email "$email" --field region=Lyon "$@" >/dev/null || true
  minute=$((minute + 1))
}
sign anafixture@gmail.com                  # 1
sign bofixture@example.org                 # 2, forgotten below
sign lufixture+x@example.org               # 3: counts, its key is lufixture@example.org's
sign a.nafixture+z@googlemail.com          # refused: the same mailbox as 1
sign dee@example.org                       # 4
# While keep_tags let tags through: cy twice (5, 6); the later one withdrawn below.
printf '%s\ndedupe:\n  keep_tags: true\n' "$settings" > muster.yaml
sign cyfixture@example.org                 # 5
sign cyfixture+news@example.org            # 6
printf '%s\n' "$settings" > muster.yaml
MUSTER_NOW=2026-12-01T10:00:00Z "$muster" dedupe --withdraw >/dev/null 2>&1   # 7 withdraws 6
cat > "$work/rows.csv" <<'CSV'
name,email,region,signed_at
Fixture Signer,eli@example.org,Paris,2026-12-01T11:00:00Z
Fixture Signer,fi.fixture@gmail.com,Paris,2026-12-01T11:01:00Z
Fixture Signer,ELI+2@example.org,Paris,2026-12-01T11:02:00Z
CSV
MUSTER_NOW=2026-12-01T12:00:00Z "$muster" import "$work/rows.csv" >/dev/null 2>&1   # 8, 9
MUSTER_NOW=2026-12-01T13:00:00Z "$muster" forget bofixture@example.org >/dev/null    # 10

led=campaigns/keys/ledger.sqlite
"$muster" verify --json > "$work/verify.json"
sqlite3 "$led" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
rows=$(sqlite3 "$led" 'SELECT count(*) FROM mailbox_keys')
rules=$(sqlite3 "$led" "SELECT value FROM meta WHERE key = 'mailbox_rules'")
rm -rf "$here/workspace"
mkdir -p "$here/workspace"
cp -R muster.yaml campaigns "$here/workspace/"
rm -f "$here/workspace/$led-wal" "$here/workspace/$led-shm"
python3 - "$work/verify.json" "$here/expected.json" "$rows" "$rules" <<'PY'
import json, sys
verify = json.load(open(sys.argv[1]))
json.dump({
    "made_by": "muster at commit bb1ef5c (make.sh): ledger format 3, mailbox key version 2",
    "ledger": "workspace/campaigns/keys/ledger.sqlite",
    "schema_version": 3,
    "head": verify["head"], "count": verify["count"], "entries": verify["entries"],
    "withdrawn": verify["withdrawn"], "redacted": verify["redacted"],
    "key_rows_as_made": int(sys.argv[3]), "mailbox_rules_as_made": sys.argv[4],
    # Today: a row only for a counted signature whose key is not its fingerprint's start.
    "key_rows_today": [3, 9],
}, open(sys.argv[2], "w"), indent=2, sort_keys=True)
PY
echo "made $here"
