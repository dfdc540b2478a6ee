#!/usr/bin/env bash
# How Tests/Fixtures/ledger-v1-variants/ was made. Tests never run this script: they use
# the committed files. It is a ledger of format 1, written by muster 0.1.0 (commit
# 3b9b0fd), before mailbox keys existed: one person signed several times under
# spellings that muster then took for different people (a +tag, Gmail dots,
# googlemail.com, fullwidth letters, a compatibility character, a Yahoo keyword, an
# iCloud alias). Today's muster must migrate it, keep `verify` green, and find exactly
# the groups in expected.json with `muster dedupe`.
#
#   MUSTER=/path/to/muster-built-at-3b9b0fd bash Tests/Fixtures/ledger-v1-variants/make.sh
#
# Needs python3 and sqlite3. The addresses are made up (local parts like
# "anafixture"): no real personal data.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
muster=${MUSTER:?set MUSTER to a muster binary built at commit 3b9b0fd}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$work"
"$muster" init ws >/dev/null
cd ws
"$muster" new variants --title "Variants" --goal 50 >/dev/null
cat > campaigns/variants/campaign.yaml <<'YAML'
title: Variants
goal: 50
fields:
  - name: region
    required: true
    personal: false
YAML

# One signature a minute from 2026-11-10T09:00Z, in this order.
minute=0
sign() {
  local email=$1; shift
  MUSTER_NOW=$(printf '2026-11-10T%02d:%02d:00Z' $((9 + minute / 60)) $((minute % 60))) \
    "$muster" sign --name "Fixture Signer" --email "$email" --field region=Lyon "$@" >/dev/null
  minute=$((minute + 1))
}
sign anafixture@gmail.com --by Sam
sign ana.fixture@gmail.com --by Sam
sign kfixture@example.org
sign 'kfixture@ｅｘａｍｐｌｅ.org'            # fullwidth letters
sign cfixture@viii.example
sign 'cfixture@ⅷ.example'                   # U+2177 SMALL ROMAN NUMERAL EIGHT
sign bofixture@yahoo.com
sign bofixture-news@yahoo.com               # a Yahoo disposable address
sign zoefixture@me.com
sign zoefixture@icloud.com
sign evefixture@outlook.com                 # not merged: Outlook.com dots count
sign eve.fixture@outlook.com
sign anafixture@hotmail.com                 # not merged: hotmail.com and outlook.com differ
sign anafixture@outlook.com
sign fayfixture@gmail.com                   # forgotten below: its variant stays alone
sign fay.fixture@gmail.com
sign 'xfixture@pаypal.example'              # Cyrillic а: refused today, kept with its own key
sign lufixture@example.org
sign lufixture+x@example.org                # a tag: merged unless keep_tags
sign mfixture@example.org
sign 'mfixture@example。org'                 # already a duplicate in 0.1.0 (not recorded)

# An import, after: its first row has the earliest time of all, so it is the one kept.
cat > "$work/rows.csv" <<'CSV'
name,email,region,signed_at
Fixture Signer,anafixture+1@gmail.com,Lyon,2026-11-01T09:00:00Z
Fixture Signer,anafixture@googlemail.com,Paris,2026-11-20T09:00:00Z
Fixture Signer,ANAFIXTURE+2@GMAIL.COM,Paris,2026-11-21T09:00:00Z
Fixture Signer,danfixture@example.org,Nantes,2026-11-21T10:00:00Z
CSV
MUSTER_NOW=2026-11-22T09:00:00Z "$muster" import "$work/rows.csv" --by "Stall volunteer" >/dev/null
MUSTER_NOW=2026-11-22T10:00:00Z "$muster" forget fayfixture@gmail.com >/dev/null

"$muster" verify --json > "$work/verify.json"
led=campaigns/variants/ledger.sqlite
sqlite3 "$led" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
rm -rf "$here/workspace"
mkdir -p "$here/workspace"
cp -R muster.yaml campaigns "$here/workspace/"
rm -f "$here/workspace/$led-wal" "$here/workspace/$led-shm"

# The groups, written by hand as addresses and turned into entry numbers here (the
# earliest signature of each group first). expected.json holds only entry numbers.
python3 - "$work/verify.json" "$here/workspace/$led" > "$here/expected.json" <<'PY'
import json, sqlite3, sys
verify = json.load(open(sys.argv[1]))
db = sqlite3.connect(sys.argv[2])
seq = {json.loads(data)["email"]: s for s, data in db.execute("SELECT seq, data FROM personal")}
def entries(*emails):
    return [seq[e] for e in emails]
ana = ["anafixture+1@gmail.com", "anafixture@gmail.com", "ana.fixture@gmail.com",
       "anafixture@googlemail.com", "ANAFIXTURE+2@GMAIL.COM"]
common = [
    ["kfixture@example.org", "kfixture@ｅｘａｍｐｌｅ.org"],
    ["cfixture@viii.example", "cfixture@ⅷ.example"],
    ["zoefixture@me.com", "zoefixture@icloud.com"],
]
print(json.dumps({
    "made_by": "muster 0.1.0 at commit 3b9b0fd (make.sh)",
    "schema_version": db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0],
    "ledger": "workspace/campaigns/variants/ledger.sqlite",
    "head": verify["head"],
    "count": verify["count"],
    "forgotten": verify["redacted"],
    # Under the standard rules: each group, earliest signature first.
    "groups": sorted([entries(*ana)] + [entries(*g) for g in common]
                     + [entries("bofixture@yahoo.com", "bofixture-news@yahoo.com"),
                        entries("lufixture@example.org", "lufixture+x@example.org")],
                     key=lambda g: g[0]),
    # With `dedupe: {keep_tags: true}`: tags and Yahoo keywords count, dots and aliases still do not.
    "groups_keep_tags": sorted([entries(*ana[1:4])] + [entries(*g) for g in common], key=lambda g: g[0]),
    # Signed under other spellings that no rule merges.
    "apart": entries("evefixture@outlook.com", "eve.fixture@outlook.com", "anafixture@hotmail.com",
                     "anafixture@outlook.com", "fay.fixture@gmail.com", "xfixture@pаypal.example",
                     "danfixture@example.org"),
}, indent=2, sort_keys=True, ensure_ascii=True))
PY
cat "$here/expected.json"
