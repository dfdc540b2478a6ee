#!/usr/bin/env bash
# How Tests/Fixtures/ledger-v1/ was made. Tests never run this script: they use the
# committed files, so that every future muster must open, migrate and verify a
# ledger exactly as muster 0.1.0 (ledger format 1, commit 3b9b0fd) wrote it.
#
#   MUSTER=/path/to/muster-built-at-3b9b0fd bash Tests/Fixtures/ledger-v1/make.sh
#
# Needs python3 with aiosmtpd (Tests/support/smtp_server.py) and sqlite3.
# Only example.org addresses; no real personal data.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
muster=${MUSTER:?set MUSTER to a muster binary built at commit 3b9b0fd}
work=$(mktemp -d)
trap 'kill "$relay_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

cd "$work"
"$muster" init ws >/dev/null
cd ws
"$muster" new fair-rates --title "Fair rates" --goal 10 >/dev/null
cat > campaigns/fair-rates/campaign.yaml <<'YAML'
title: Fair rates
goal: 10
sender: "Fair Rates Collective <hello@example.org>"
fields:
  - name: region
    required: true
    personal: false
consent:
  updates: "Keep me informed"
YAML
cat > muster.yaml <<'YAML'
sender: "Fair Rates <hello@example.org>"
smtp:
  url: smtp://127.0.0.1:9
  starttls: never
YAML
mkdir -p campaigns/fair-rates/emails
printf -- '---\nsubject: "Thank you, {{first_name}}!"\naudience: signers\n---\nHi {{name}}, we are {{campaign.count}}.\n' \
  > campaigns/fair-rates/emails/thanks.md
printf -- '---\nsubject: "News"\naudience: consenting\n---\nNews for {{name}}.\n' \
  > campaigns/fair-rates/emails/news.md

# Signatures from the command line (one with a comment, some consenting)...
sign() { "$muster" sign --name "$1" --email "$2" --field region="$3" "${@:4}" >/dev/null; }
sign "Ana Lima" ana@example.org Lyon --consent updates --comment "For fair pay"
sign "Bo Berg" bo@example.org Paris --consent updates
sign "Cy Dale" cy@example.org Lyon
sign "Di Eng" di@example.org Nantes --consent updates
sign "Ed Fox" ed@example.org Paris --consent updates
sign "Flo Gray" flo@example.org Lyon --consent updates
sign "Gus Hale" gus@example.org Paris
"$muster" sign --name "Ana Again" --email ANA@example.org --field region=Lyon >/dev/null # a duplicate

# ...an import (one rejected row, one duplicate of the ledger)...
cat > "$work/signers.csv" <<'CSV'
name,email,region,consent
Hana Ito,hana@example.org,Lyon,updates
Ivo Jung,ivo@example.org,Nantes,
Jo Kim,jo@example.org,Paris,updates
Bo Berg,bo@example.org,Paris,updates
No Address,,Lyon,
CSV
"$muster" import "$work/signers.csv" --by "Stall volunteer" --rejects "$work/rejects.csv"

# ...a forgotten signer and two opt-outs (one of them never signed).
"$muster" forget cy@example.org >/dev/null
"$muster" unsubscribe di@example.org >/dev/null
"$muster" unsubscribe never-signed@example.org >/dev/null

# Outbox rows in every state: a blast of "thanks" to the loopback relay, which refuses
# one recipient (failed), tempfails one (deferred after its retries) and drops the
# connection after another's data (unknown); the rest are sent. Then one message of
# "news" (--limit 1): the others stay queued.
mkfifo "$work/relay-in"
python3 "$root/Tests/support/smtp_server.py" --spool "$work/spool" --exit-on-stdin-eof \
  --reject-rcpt '^ed@' --tempfail-data '^flo@' --drop-after-dot '^gus@' \
  < "$work/relay-in" > "$work/relay-port" &
relay_pid=$!
exec 9> "$work/relay-in"
for _ in $(seq 100); do [ -s "$work/relay-port" ] && break; sleep 0.1; done
port=$(head -n1 "$work/relay-port")
export MUSTER_SMTP_URL="smtp://127.0.0.1:$port" MUSTER_BACKOFF_SECONDS=0.05
"$muster" mail send thanks --yes --connections 1 >/dev/null || echo "thanks: exit $? (expected: 75, deferred left)"
"$muster" mail send news --yes --limit 1 --connections 1 >/dev/null || echo "news: exit $?"
exec 9>&-
wait "$relay_pid" || true

"$muster" verify --json > "$work/verify.json"
led=campaigns/fair-rates/ledger.sqlite
# Fold the write-ahead log into the file, so the fixture is one file.
sqlite3 "$led" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null

rm -rf "$here/workspace"
mkdir -p "$here/workspace"
cp -R muster.yaml campaigns "$here/workspace/"
rm -f "$here/workspace/$led-wal" "$here/workspace/$led-shm" "$here/workspace/campaigns/fair-rates/.mail.lock"
python3 - "$work/verify.json" "$here/workspace/$led" > "$here/expected.json" <<'PY'
import json, sqlite3, sys
verify = json.load(open(sys.argv[1]))
db = sqlite3.connect(sys.argv[2])
states = dict(db.execute("SELECT template || '/' || state, count(*) FROM outbox GROUP BY 1").fetchall())
kinds = dict(db.execute("SELECT kind, count(*) FROM entries GROUP BY kind").fetchall())
print(json.dumps({
    "made_by": "muster 0.1.0 at commit 3b9b0fd (make.sh)",
    "schema_version": db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0],
    "ledger": "workspace/campaigns/fair-rates/ledger.sqlite",
    "head": verify["head"],
    "count": verify["count"],
    "entries": kinds,
    "personal_rows": db.execute("SELECT count(*) FROM personal").fetchone()[0],
    "forgotten": ["cy@example.org"],
    "unsubscribed": ["di@example.org", "never-signed@example.org"],
    "outbox": states,
}, indent=2, sort_keys=True))
PY
cat "$here/expected.json"
