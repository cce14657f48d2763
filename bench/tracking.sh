#!/usr/bin/env bash
# Tracking endpoints under load: wrk (loopback) against the open pixel and a tracked
# link of a real delivered message, while the hits are recorded as events in batches.
# For reference, in the same run, wrk against `GET /` (the HTTP stack alone, no
# recording). After the load, waits until every hit wrk got an answer for is committed
# (postwerk_tracking_hits_total) and prints it.
#   bench/tracking.sh                       # DURATION=10s CONNECTIONS=64 THREADS=1
#   POSTWERK_BIN=/path/to/postwerk bench/tracking.sh   # no cargo build
# Prints: pixel req_per_s=…, click req_per_s=…, health req_per_s=…, recorded=…/answered.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}; CONNECTIONS=${CONNECTIONS:-64}; THREADS=${THREADS:-1}
for t in wrk curl python3; do command -v "$t" >/dev/null || { echo "needs $t (apt-get install wrk)"; exit 2; }; done
if [ -z "${POSTWERK_BIN:-}" ]; then cargo build --release -q; POSTWERK_BIN=target/release/postwerk; fi
BIN=$(realpath "$POSTWERK_BIN")

WORK=$(mktemp -d /var/tmp/pwtrack.XXXXXX); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
HTTPP=$(port); SINKP=$(port); SUBP=$(port); TLSP=$(port); INP=$(port)
cat >"$WORK/postwerk.toml" <<TOML
data_dir = "$WORK/data"
[http]
listen = "127.0.0.1:$HTTPP"
[delivery]
ehlo_name = "mta.bench.test"
tls = "disabled"
[delivery.routes]
"example.net" = "127.0.0.1:$SINKP"
[smtp.submission]
listen = "127.0.0.1:$SUBP"
listen_tls = "127.0.0.1:$TLSP"
[smtp.inbound]
listen = "127.0.0.1:$INP"
[privacy]
consent_required = {}
TOML
PW=("$BIN" --config "$WORK/postwerk.toml")
KEY=$("${PW[@]}" keys create --name bench --scopes send,read --quiet | tail -1)
"${PW[@]}" domains add example.com >/dev/null
mkdir -p "$WORK/sink"
python3 crates/postwerk/tests/support/sink.py 127.0.0.1 "$SINKP" "$WORK/sink" >"$WORK/sink.log" 2>&1 & PIDS+=($!)
RUST_LOG=warn "${PW[@]}" serve >"$WORK/serve.log" 2>&1 & PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$HTTPP/" >/dev/null && break; sleep 0.1; done
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$SINKP") 2>/dev/null && break; sleep 0.1; done

curl -sf -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  "http://127.0.0.1:$HTTPP/v1/messages" -d '{"from": "news@example.com", "to": ["reader@example.net"],
   "subject": "Bench", "stream": "broadcast", "html": "<p><a href=\"https://shop.example/sale\">Sale</a></p>"}' >/dev/null
for _ in $(seq 200); do [ -f "$WORK/sink/1.eml" ] && break; sleep 0.1; done
[ -f "$WORK/sink/1.eml" ] || { echo "the message did not reach the sink"; tail -n 5 "$WORK/serve.log"; tail -n 5 "$WORK/sink.log"; exit 1; }
read -r PIXEL CLICK < <(python3 - "$WORK/sink/1.eml" <<'PY'
import quopri, re, sys
text = quopri.decodestring(open(sys.argv[1], "rb").read()).decode("utf-8", "replace")
urls = re.findall(r'http://[^"\s]+/t/[oc]/[^"\s]+', text)
print(next(u for u in urls if "/t/o/" in u), next(u for u in urls if "/t/c/" in u))
PY
)
rate() { wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -H 'User-Agent: Mozilla/5.0 bench' "$1" | tee "$WORK/wrk.out" >&2
  awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out"; }
answered() { awk '/requests in/ {print $1}' "$WORK/wrk.out"; }
HEALTH=$(rate "http://127.0.0.1:$HTTPP/")
P=$(rate "$PIXEL"); PN=$(answered)
C=$(rate "$CLICK"); CN=$(answered)
hits() { curl -sf "http://127.0.0.1:$HTTPP/metrics" | awk -v k="$1" '$1 == "postwerk_tracking_hits_total{kind=\""k"\",result=\"recorded\"}" {print $2}'; }
for _ in $(seq 100); do [ "$(hits open)" = "$PN" ] && [ "$(hits click)" = "$CN" ] && break; sleep 0.2; done
echo "health req_per_s=$HEALTH (HTTP stack alone)"
echo "pixel  req_per_s=$P recorded=$(hits open)/$PN"
echo "click  req_per_s=$C recorded=$(hits click)/$CN"
