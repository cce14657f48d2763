#!/usr/bin/env bash
# Contact import: N rows (email and five attributes) through `postwerk contacts import`
# (screening, the watchdog and commit included) into a fresh SQLite store, then the same
# file through `POST /v1/imports` into a second one. Prints rows per second and peak RSS
# of each, and the machine's SQLite insert rate in the same run for comparison.
#
#   bench/contacts_import.sh                 # N=1000000
#   N=100000 bench/contacts_import.sh
set -euo pipefail
N=${N:-1000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release -q --manifest-path "$ROOT/Cargo.toml"
BIN=$ROOT/target/release/postwerk
WORK=$(mktemp -d /var/tmp/pwimport.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

python3 - "$WORK/contacts.csv" "$N" <<'PY'
import random, sys
path, n = sys.argv[1], int(sys.argv[2])
random.seed(1)
names = ["anna", "jan", "ola", "piotr", "eva", "lukas", "mia", "noah", "zofia", "karl"]
with open(path, "w") as f:
    f.write("email,first_name,last_name,city,plan,score\n")
    for i in range(n):
        name = random.choice(names)
        f.write(f"{name}.{i}@d{i % 40}.example.test,{name.title()},Nowak{i % 97},"
                f"City{i % 13},plan{i % 4},{i % 1000}\n")
PY

config() { # config DIR PORT
  mkdir -p "$1/data"
  printf 'data_dir = "%s/data"\n[http]\nlisten = "127.0.0.1:%s"\n[store]\nurl = "sqlite://%s/data/postwerk.db"\n[delivery]\nehlo_name = "mta.bench.test"\n' \
    "$1" "$2" "$1" >"$1/postwerk.toml"
}
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
report() { # report LABEL SECONDS RSS_KIB
  python3 -c "import sys;n,s,r=int(sys.argv[1]),float(sys.argv[2]),int(sys.argv[3]);print(f'{sys.argv[4]} rows={n} seconds={s:.1f} rows_per_s={n/s:.0f} peak_rss_mib={r/1024:.0f}')" "$N" "$2" "$3" "$1"
}

# The CLI: one process, measured whole by GNU time.
config "$WORK/cli" "$(free_port)"
"$BIN" --config "$WORK/cli/postwerk.toml" lists create bench >/dev/null
/usr/bin/time -f '%e %M' -o "$WORK/cli.time" "$BIN" --config "$WORK/cli/postwerk.toml" \
  contacts import "$WORK/contacts.csv" --list bench --consent marketing --source bench 2>"$WORK/cli.log" \
  || { tail -3 "$WORK/cli.log"; exit 1; }
read -r secs rss <"$WORK/cli.time"
report "cli" "$secs" "$rss"

# The API: the server's peak RSS from /proc, the time until the import is done.
PORT=$(free_port)
config "$WORK/api" "$PORT"
KEY=$("$BIN" --config "$WORK/api/postwerk.toml" keys create --name bench --scopes import,write --quiet | tail -1)
POSTWERK_LOG=warn "$BIN" serve --config "$WORK/api/postwerk.toml" >"$WORK/serve.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/v1/health" && break; sleep 0.1; done
curl -s -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{"name":"bench"}' "http://127.0.0.1:$PORT/v1/lists" >/dev/null
start=$(date +%s.%N)
id=$(curl -s -H "Authorization: Bearer $KEY" -H 'Content-Type: text/csv' --data-binary @"$WORK/contacts.csv" \
  "http://127.0.0.1:$PORT/v1/imports?list=bench&consent=marketing&source=bench" \
  | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
while :; do
  state=$(curl -s -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/v1/imports/$id" \
    | python3 -c 'import json,sys;print(json.load(sys.stdin)["state"])')
  case $state in done) break ;; failed|held|cancelled) echo "api import ended $state"; exit 1 ;; esac
  sleep 0.5
done
secs=$(python3 -c "import sys;print(float(sys.argv[1])-float(sys.argv[2]))" "$(date +%s.%N)" "$start")
rss=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
report "api" "$secs" "$rss"

# The machine's own SQLite (Python's sqlite3, one transaction, a random 32-byte key per
# row as a blind index is): the ceiling of a store of this kind on this disk.
python3 - "$WORK/raw.db" "$N" <<'PY'
import os, sqlite3, sys, time
path, n = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(path)
c.execute("PRAGMA journal_mode = WAL")
c.execute("CREATE TABLE t (h BLOB PRIMARY KEY, data BLOB) WITHOUT ROWID")
start = time.time()
c.executemany("INSERT INTO t VALUES (?, ?)", ((os.urandom(32), os.urandom(300)) for _ in range(n)))
c.commit()
s = time.time() - start
print(f"sqlite_raw rows={n} seconds={s:.1f} rows_per_s={n/s:.0f} (one table, one transaction)")
PY
