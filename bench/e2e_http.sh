#!/usr/bin/env bash
# End-to-end HTTP benchmark: N messages of SIZE bytes through POST /v1/messages/batch,
# DKIM-signed (RSA-2048 + Ed25519) and relayed to Postfix's smtp-sink on loopback;
# then Postfix itself relaying the same load (../shared/bench/mtabench.sh) in the same
# run, so the ratio is meaningful on a noisy machine.
#   N=20000 SIZE=5120 bench/e2e_http.sh
# Prints: postwerk accept_msgs_per_s=… e2e_msgs_per_s=…, postfix e2e_msgs_per_s=…, ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}; SIZE=${SIZE:-5120}; THREADS=${THREADS:-8}; POSTFIX=${POSTFIX:-1}
command -v smtp-sink >/dev/null || { echo "needs postfix's smtp-sink (apt-get install postfix)"; exit 2; }
cargo build --release -q
BIN=$PWD/target/release/postwerk
WORK=$(mktemp -d /var/tmp/pwbench.XXXXXX); PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
SINKP=$(port); HTTPP=$(port)
cat >"$WORK/postwerk.toml" <<TOML
data_dir = "$WORK/data"
[http]
listen = "127.0.0.1:$HTTPP"
[delivery]
ehlo_name = "mta.bench.test"
bounce_domain = "bounces.example.com"
[delivery.routes]
"example.test" = "127.0.0.1:$SINKP"
TOML
KEY=$("$BIN" --config "$WORK/postwerk.toml" keys create --name bench --scopes send,read --quiet)
"$BIN" --config "$WORK/postwerk.toml" domains add example.com >/dev/null
smtp-sink -u nobody -M "$N" "127.0.0.1:$SINKP" 1024 >"$WORK/sink.log" 2>&1 & SINK=$!; PIDS+=($SINK)
POSTWERK_LOG=warn "$BIN" --config "$WORK/postwerk.toml" serve >"$WORK/serve.log" 2>&1 & PIDS+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$HTTPP/" && break; sleep 0.1; done
t0=$(date +%s.%N)
INJ=$(python3 bench/http_inject.py "127.0.0.1:$HTTPP" "$KEY" "$N" "$SIZE" "$THREADS" example.test)
case $INJ in *errors=*) echo "injection failed: $INJ"; exit 1;; esac
for _ in $(seq 12000); do kill -0 "$SINK" 2>/dev/null || break; sleep 0.05; done
kill -0 "$SINK" 2>/dev/null && { echo "not all $N messages arrived within 600 s"; exit 1; }
t1=$(date +%s.%N)
inj_s=$(echo "$INJ" | sed -n 's/.*inject_s=\([0-9.]*\).*/\1/p')
pw=$(python3 -c "print(round($N/($t1-$t0)))")
echo "postwerk $INJ accept_msgs_per_s=$(python3 -c "print(round($N/$inj_s))") e2e_msgs_per_s=$pw n=$N size=$SIZE"
[ "$POSTFIX" = 1 ] || exit 0
PF=$(MODE=throughput RUNS=1 N=$N SIZE=$SIZE PORT_IN=$(port) PORT_SINK=$(port) bash ../shared/bench/mtabench.sh 2>/dev/null | tail -1)
pf=$(echo "$PF" | sed -n 's/.*e2e_msgs_per_s=\([0-9]*\).*/\1/p')
echo "postfix $PF"
echo "ratio postwerk/postfix e2e = $(python3 -c "print(round($pw/$pf, 2))")x (target >= 4.9x: 2,800 msg/s with DKIM vs ~570)"
