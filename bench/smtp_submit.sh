#!/usr/bin/env bash
# SMTP submission accept rate: Postfix's smtp-source sends N messages of SIZE payload bytes
# over SESSIONS parallel sessions (one connection each, reused: smtp-source -d) to
# Postwerk's submission port (trusted loopback network, no AUTH, no TLS); then, in the same
# run, the same load into a private Postfix smtpd (../shared/bench/mtabench.sh). Both relay
# what they accept to Postfix's smtp-sink on loopback while they accept (Postwerk
# DKIM-signs it); the figure is the accept rate = N / wall-clock time of smtp-source.
#   N=20000 SIZE=5120 SESSIONS=20 bench/smtp_submit.sh
#   POSTWERK_BIN=/path/to/postwerk bench/smtp_submit.sh   # no cargo build
#   DELIVERY=hold bench/smtp_submit.sh                    # Postwerk accepts, delivers nothing
# Prints: postwerk accept_msgs_per_s=… committed=…, postfix inject_msgs_per_s=…, ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}; SIZE=${SIZE:-5120}; SESSIONS=${SESSIONS:-20}; POSTFIX=${POSTFIX:-1}
DELIVERY=${DELIVERY:-sink}   # sink: relay to smtp-sink during the run; hold: deliveries wait
MTABENCH=${MTABENCH:-../shared/bench/mtabench.sh}
for t in smtp-source smtp-sink curl python3; do
  command -v "$t" >/dev/null || { echo "needs $t (smtp-source/smtp-sink: apt-get install postfix)"; exit 2; }
done
if [ -z "${POSTWERK_BIN:-}" ]; then cargo build --release -q; POSTWERK_BIN=target/release/postwerk; fi
BIN=$(realpath "$POSTWERK_BIN")
[ -x "$BIN" ] || { echo "no postwerk binary at $POSTWERK_BIN"; exit 2; }

WORK=$(mktemp -d /var/tmp/pwsubmit.XXXXXX); PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 did not open"; exit 1; }
SUBP=$(port); TLSP=$(port); HTTPP=$(port); SINKP=$(port); INP=$(port)

# Recipients are bulk@example.net (as in mtabench.sh), routed to the sink. DELIVERY=hold
# routes them to a listener that accepts connections and never greets, so every delivery
# connection waits for a 220 for the whole run: acceptance alone, without DKIM signing and
# relaying competing for the two cores (a refused connection would not do: every new
# message would start another failing attempt and a deferral write).
case $DELIVERY in sink|hold) ;; *) echo "DELIVERY must be sink or hold"; exit 2;; esac
cat >"$WORK/postwerk.toml" <<TOML
data_dir = "$WORK/data"
[http]
listen = "127.0.0.1:$HTTPP"
[delivery]
ehlo_name = "mta.bench.test"
bounce_domain = "bounces.example.com"
tls = "disabled"
command_timeout = "10m"
[delivery.routes]
"example.net" = "127.0.0.1:$SINKP"
[smtp.submission]
listen = "127.0.0.1:$SUBP"
listen_tls = "127.0.0.1:$TLSP"
[[smtp.submission.trusted]]
cidr = "127.0.0.0/8"
tenant = "default"
stream = "broadcast"
[privacy]
consent_required = {}     # smtp-source's recipients have no recorded consent
TOML
# An inbound MX listener (smtp.inbound), where the binary has one, off the default port.
export POSTWERK_SMTP_INBOUND_LISTEN=127.0.0.1:$INP
pw() { "$BIN" --config "$WORK/postwerk.toml" "$@"; }
KEY=$(pw keys create --name bench --scopes read --quiet)
pw domains add example.com >/dev/null
if [ "$DELIVERY" = sink ]; then
  smtp-sink -u nobody -M "$N" "127.0.0.1:$SINKP" 1024 >"$WORK/sink.log" 2>&1 & SINK=$!; PIDS+=("$SINK")
  wait_port "$SINKP"
else
  python3 -c 'import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(1024); held=[]
while True: held.append(s.accept()[0])' "$SINKP" & HOLD=$!; PIDS+=("$HOLD")
  wait_port "$SINKP"
fi
POSTWERK_LOG=warn "$BIN" --config "$WORK/postwerk.toml" serve >"$WORK/serve.log" 2>&1 & PW=$!; PIDS+=("$PW")
wait_port "$SUBP"; wait_port "$HTTPP"

t0=$(date +%s.%N)
rc=0; smtp-source -s "$SESSIONS" -d -m "$N" -l "$SIZE" -f bench@example.com \
  -t bulk@example.net "127.0.0.1:$SUBP" >"$WORK/source.log" 2>&1 || rc=$?
t1=$(date +%s.%N)
[ "$rc" = 0 ] || { echo "smtp-source failed (exit $rc):"; head -5 "$WORK/source.log"; tail -5 "$WORK/serve.log"; }

# Every committed message (one recipient each) has one `accepted` event.
committed=$(python3 - "$HTTPP" "$KEY" <<'PY'
import json, sys, urllib.request
port, key = sys.argv[1], sys.argv[2]
n, cursor = 0, None
while True:
    url = f"http://127.0.0.1:{port}/v1/events?type=accepted&limit=1000" + (f"&cursor={cursor}" if cursor else "")
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    page = json.load(urllib.request.urlopen(req, timeout=60))
    n += len(page["events"]); cursor = page.get("next_cursor")
    if not cursor: break
print(n)
PY
) || committed=unknown
pw_rate=$(python3 -c "print(round($N/($t1-$t0)))")
e2e=""
if [ "$DELIVERY" = sink ] && [ "$rc" = 0 ]; then  # the sink exits after the N-th message
  for _ in $(seq 6000); do kill -0 "$SINK" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$SINK" 2>/dev/null && e2e=" e2e_msgs_per_s=timeout" \
    || e2e=" e2e_msgs_per_s=$(python3 -c "print(round($N/($(date +%s.%N)-$t0)))")"
fi
echo "postwerk accept_msgs_per_s=$pw_rate inject_s=$(python3 -c "print(round($t1-$t0, 2))") committed=$committed/$N$e2e n=$N size=$SIZE sessions=$SESSIONS delivery=$DELIVERY"
[ "$DELIVERY" = hold ] && { kill "$HOLD" || true; }  # waiting deliveries fail: quick shutdown
kill "$PW" 2>/dev/null || true; wait "$PW" 2>/dev/null || true
[ "$rc" = 0 ] && [ "$committed" = "$N" ] || { echo "FAILED: not every message was committed"; exit 1; }
[ "$POSTFIX" = 1 ] || exit 0

PF=$(MODE=throughput RUNS=1 N=$N SIZE=$SIZE SESSIONS=$SESSIONS PORT_IN=$(port) PORT_SINK=$(port) \
  bash "$MTABENCH" 2>"$WORK/mtabench.log" | tail -1) || { cat "$WORK/mtabench.log"; exit 1; }
pf=$(echo "$PF" | sed -n 's/.*inject_msgs_per_s=\([0-9]*\).*/\1/p')
[ -n "$pf" ] || { echo "postfix run failed: $PF"; cat "$WORK/mtabench.log"; exit 1; }
echo "postfix inject_msgs_per_s=$pf ($PF)"
echo "ratio postwerk/postfix accept = $(python3 -c "print(round($pw_rate/$pf, 2))")x (target >= 8,000 msg/s durably: ~12x Postfix's ~670)"
