#!/usr/bin/env bash
# Broadcast expansion (issue 19): N contacts with marketing consent on one list (imported
# by the CLI first, not timed), then one broadcast to the list, personalised per contact.
# Prints how long the expansion took to screen and queue everyone (the broadcast reaching
# `sent`), the server's RSS growth over it, and the latency of transactional messages sent
# through the API every 100 ms meanwhile (accepted → at the sink), during the expansion and,
# with DRAIN=1, until the queue is empty. Bulk mail goes to smtp-sink (Postfix's, discards);
# transactional mail to a Python sink that notes arrival times.
#
#   bench/broadcast.sh                      # N=1000000, DRAIN=0
#   N=100000 DRAIN=1 bench/broadcast.sh     # and until the queue is empty
#   DRAIN=1 DRAIN_SECONDS=120 bench/broadcast.sh   # the first two minutes of the drain
set -euo pipefail
N=${N:-1000000}; DRAIN=${DRAIN:-0}; DRAIN_SECONDS=${DRAIN_SECONDS:-0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release -q --manifest-path "$ROOT/Cargo.toml"
BIN=$ROOT/target/release/postwerk
WORK=$(mktemp -d /var/tmp/pwbcast.XXXXXX)
PIDS=()
# KEEP=1 keeps the working directory (the database) and prints its path.
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
HTTPP=$(port); BULK=$(port); PROBE=$(port)
mkdir -p "$WORK/data"
cat >"$WORK/postwerk.toml" <<TOML
data_dir = "$WORK/data"
[http]
listen = "127.0.0.1:$HTTPP"
[store]
url = "sqlite://$WORK/data/postwerk.db"
[delivery]
ehlo_name = "mta.bench.test"
[delivery.routes]
"probe.test" = "127.0.0.1:$PROBE"
$(for d in $(seq 0 19); do echo "\"d$d.example.test\" = \"127.0.0.1:$BULK\""; done)
[smtp.inbound]
enabled = false
TOML
pw() { "$BIN" --config "$WORK/postwerk.toml" "$@"; }
python3 - "$WORK/contacts.csv" "$N" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
names = ["Anna", "Jan", "Ola", "Piotr", "Eva"]
with open(path, "w") as f:
    f.write("email,first_name,city\n")
    for i in range(n):
        f.write(f"p{i}@d{i % 20}.example.test,{names[i % 5]},City{i % 13}\n")
PY
pw lists create bench >/dev/null
pw contacts import "$WORK/contacts.csv" --list bench --consent marketing --source bench >/dev/null 2>"$WORK/import.log" \
  || { tail -3 "$WORK/import.log"; exit 1; }
pw domains add example.com >/dev/null
KEY=$(pw keys create --name bench --scopes send,read,write --quiet | tail -1)
smtp-sink $( [ "$(id -u)" = 0 ] && echo "-u nobody" ) "127.0.0.1:$BULK" 1024 >"$WORK/sink.log" 2>&1 & PIDS+=($!)
POSTWERK_LOG=warn "$BIN" serve --config "$WORK/postwerk.toml" >"$WORK/serve.log" 2>&1 & PID=$!; PIDS+=($PID)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$HTTPP/v1/health" && break; sleep 0.1; done
api() { curl -s -X "$1" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' ${3:+--data "$3"} "http://127.0.0.1:$HTTPP$2"; }
api POST /v1/templates '{"name":"bench","subject":"News for {{ first_name }}","html":"<h1>Hello {{ first_name }}</h1><p>What is new in {{ city }} this month: a longer paragraph of text that stands for the body of a real newsletter, with <a href=\"https://example.com/article\">a link</a> to read more.</p><p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>"}' >/dev/null
id=$(api POST /v1/broadcasts '{"name":"bench","template":"bench","from":"News <news@example.com>","lists":["bench"]}' \
  | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
rss() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }
base=$(rss)
# The probe: transactional mail every 100 ms, its sink, and its latencies (until $WORK/stop).
python3 - "$HTTPP" "$KEY" "$PROBE" "$WORK" <<'PY' & PIDS+=($!)
import json, os, sys, threading, time, urllib.request
from aiosmtpd.controller import Controller
httpp, key, probe, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sent, got = {}, {}
class H:
    async def handle_DATA(self, server, session, envelope):
        for line in envelope.content.split(b"\r\n"):
            if line.lower().startswith(b"subject: probe "):
                got[line.split()[-1].decode()] = time.time()
        return "250 OK"
c = Controller(H(), hostname="127.0.0.1", port=probe); c.start()
phase = "expansion"; lat = {"expansion": [], "drain": []}; i = 0
while not os.path.exists(f"{work}/stop"):
    if os.path.exists(f"{work}/expanded"): phase = "drain"
    body = json.dumps({"from": "app@example.com", "to": f"u{i}@probe.test", "subject": f"probe {i}", "text": "x"}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{httpp}/v1/messages", body, {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    t = time.time()
    try: urllib.request.urlopen(req, timeout=30).read(); sent[str(i)] = (t, phase)
    except Exception as e: print("probe send failed:", e, file=sys.stderr)
    i += 1; time.sleep(0.1)
time.sleep(3)
for k, (t, ph) in sent.items():
    lat[ph].append((got[k] - t) if k in got else float("inf"))
for ph, xs in lat.items():
    if not xs: continue
    xs.sort(); p = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))]
    print(f"transactional_{ph} n={len(xs)} p50_ms={p(0.5)*1000:.0f} p99_ms={p(0.99)*1000:.0f} max_ms={xs[-1]*1000:.0f}")
PY
PROBE_PID=$!
sleep 1
start=$(date +%s.%N); peak=$base
api POST "/v1/broadcasts/$id/send" >/dev/null
while :; do
  r=$(rss); [ "$r" -gt "$peak" ] && peak=$r
  state=$(api GET "/v1/broadcasts/$id" | python3 -c 'import json,sys;print(json.load(sys.stdin)["state"])')
  [ "$state" = sent ] && break
  sleep 0.5
done
secs=$(python3 -c "import sys;print(float(sys.argv[1])-float(sys.argv[2]))" "$(date +%s.%N)" "$start")
touch "$WORK/expanded"
api GET "/v1/broadcasts/$id" | python3 -c "import json,sys;c=json.load(sys.stdin)['counts'];print(f\"expansion counts={json.dumps(c)} seconds=$secs per_s={c['recipients']/$secs:.0f} rss_growth_mib={($peak-$base)/1024:.0f}\")"
if [ "$DRAIN" = 1 ]; then
  dstart=$(date +%s.%N)
  while :; do
    r=$(rss); [ "$r" -gt "$peak" ] && peak=$r
    if [ "$DRAIN_SECONDS" != 0 ]; then
      python3 -c "import sys;sys.exit(float(sys.argv[1])-float(sys.argv[2])<float(sys.argv[3]))" "$(date +%s.%N)" "$dstart" "$DRAIN_SECONDS" && break
    else
      # Every 10 s: the backlog query reads every waiting recipient.
      left=$(curl -s "http://127.0.0.1:$HTTPP/metrics" | awk '/^postwerk_queue_depth/ {s+=$2} END {print s+0}')
      [ "$left" = 0 ] && break
      sleep 9
    fi
    sleep 1
  done
  left=$(curl -s "http://127.0.0.1:$HTTPP/metrics" | awk '/^postwerk_queue_depth/ {s+=$2} END {print s+0}')
  python3 -c "import sys;s=float(sys.argv[1])-float(sys.argv[2]);d=int(sys.argv[3])-int(sys.argv[6]);print(f'drain seconds={s:.0f} delivered={d} per_s={d/s:.0f} left={sys.argv[6]} rss_growth_mib={(int(sys.argv[4])-int(sys.argv[5]))/1024:.0f}')" \
    "$(date +%s.%N)" "$dstart" "$N" "$peak" "$base" "$left"
fi
touch "$WORK/stop"; wait "$PROBE_PID"
grep -E "WARN|ERROR" "$WORK/serve.log" | sort | uniq -c | sort -rn | head -5
