#!/usr/bin/env bash
# How Tests/Fixtures/ledger-v6/ was made. Tests never run this script: they use the
# committed files. It is a ledger of format 6 as muster wrote it before seals (commit
# 8d9842e, the last of format 6): signatures, a blast whose relay refused one recipient
# with 550 5.1.1 (a hard bounce and a suppression, both from the SMTP path) and a
# `unsubscribe --reset-bounces` (a reset row). Today's muster must open it, seal those
# rows in migration 7, verify it unchanged, and keep the suppression working.
#
#   MUSTER=/path/to/muster-built-at-8d9842e bash Tests/Fixtures/ledger-v6/make.sh
#
# Needs python3 with aiosmtpd (the test relay, Tests/support/smtp_server.py) and sqlite3.
# Made-up addresses only: no real personal data.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
muster=${MUSTER:?set MUSTER to a muster binary built at commit 8d9842e}
work=$(mktemp -d)
relay=
trap '[ -n "$relay" ] && kill "$relay" 2>/dev/null; rm -rf "$work"' EXIT

mkdir "$work/spool"
python3 "$root/Tests/support/smtp_server.py" --spool "$work/spool" --reject-rcpt '^gonefixture@' > "$work/port" &
relay=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(head -n 1 "$work/port")

cd "$work"
"$muster" init ws >/dev/null
cd ws
"$muster" new bounces --title "Bounces" --goal 20 >/dev/null
cat > campaigns/bounces/campaign.yaml <<'YAML'
title: Bounces
goal: 20
YAML
cat > muster.yaml <<'YAML'
sender: "Fixture Collective <hello@example.org>"
smtp:
  url: smtp://127.0.0.1:9
  starttls: never
YAML
cat > campaigns/bounces/emails/thanks.md <<'MD'
---
subject: "Thank you"
audience: signers
---
Thank you, {{name}}.
MD
minute=0
for email in anafixture@example.org gonefixture@example.org cyfixture@example.org; do
  MUSTER_NOW=$(printf '2026-12-01T09:%02d:00Z' $minute) "$muster" sign --name "Fixture Signer" --email "$email" >/dev/null
  minute=$((minute + 1))
done
MUSTER_NOW=2026-12-01T10:00:00Z MUSTER_SMTP_URL="smtp://127.0.0.1:$port" "$muster" mail send thanks --yes >/dev/null
MUSTER_NOW=2026-12-01T11:00:00Z "$muster" unsubscribe cyfixture@example.org --reset-bounces >/dev/null

led=campaigns/bounces/ledger.sqlite
"$muster" verify --json > "$work/verify.json"
"$muster" mail status --json > "$work/status.json"
sqlite3 "$led" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
version=$(sqlite3 "$led" "SELECT value FROM meta WHERE key = 'schema_version'")
bounces=$(sqlite3 "$led" "SELECT group_concat(kind || '/' || source, ' ') FROM (SELECT kind, source FROM bounces ORDER BY id)")
suppressions=$(sqlite3 "$led" "SELECT group_concat(reason || '/' || source, ' ') FROM suppressions")
rm -rf "$here/workspace"
mkdir -p "$here/workspace"
cp -R muster.yaml campaigns "$here/workspace/"
rm -f "$here/workspace/$led-wal" "$here/workspace/$led-shm" "$here/workspace/campaigns/bounces/.mail.lock"
python3 - "$work/verify.json" "$work/status.json" "$here/expected.json" "$version" "$bounces" "$suppressions" <<'PY'
import json, sys
verify = json.load(open(sys.argv[1]))
status = json.load(open(sys.argv[2]))
json.dump({
    "made_by": "muster at commit 8d9842e (make.sh): ledger format 6, before seals",
    "ledger": "workspace/campaigns/bounces/ledger.sqlite",
    "schema_version": int(sys.argv[4]),
    "head": verify["head"], "count": verify["count"], "entries": verify["entries"],
    "bounced": status["bounced"], "complained": status["complained"],
    "bounces": sys.argv[5].split(" "), "suppressions": sys.argv[6].split(" "),
    "suppressed": ["gonefixture@example.org"],
}, open(sys.argv[3], "w"), indent=2, sort_keys=True)
PY
echo "made $here"
