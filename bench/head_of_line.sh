#!/usr/bin/env bash
# Head-of-line benchmark (issue 3): an N-message bulk flood over SMTP (smtp-source,
# 20 sessions) followed by 20 urgent messages to another domain, through Postfix and
# then through Postwerk, in the same run (../shared/bench/mtabench.sh, latency mode).
# Postwerk takes the flood on its `broadcast` stream (trusted network default) and the
# urgent mail on `transactional` (X-Postwerk-Stream header).
#   N=20000 bench/head_of_line.sh
# Prints mtabench's report lines: urgent_latency_s(accept->sink) p50/p99 per MTA.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}; SIZE=${SIZE:-5120}; RUNS=${RUNS:-1}; POSTFIX=${POSTFIX:-1}
MTABENCH=${MTABENCH:-../shared/bench/mtabench.sh}
BIN=${POSTWERK_BIN:-$PWD/target/release/postwerk}
[ -x "$BIN" ] || cargo build --release -q
WORK=$(mktemp -d /var/tmp/pwhol.XXXXXX)
trap '[ -f "$WORK/pid" ] && kill "$(cat "$WORK/pid")" 2>/dev/null; rm -rf "$WORK"' EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
PORT_IN=$(port); PORT_SINK=$(port); HTTPP=$(port); export PORT_IN PORT_SINK
cat >"$WORK/postwerk.toml" <<TOML
data_dir = "$WORK/data"
[http]
listen = "127.0.0.1:$HTTPP"
[delivery]
ehlo_name = "mta.bench.test"
[delivery.routes]
"example.net" = "127.0.0.1:$PORT_SINK"
"urgent.test" = "127.0.0.1:$PORT_SINK"
[smtp.submission]
listen = "127.0.0.1:$PORT_IN"
listen_tls = "127.0.0.1:$(port)"
[[smtp.submission.trusted]]
cidr = "127.0.0.0/8"
stream = "broadcast"
[smtp.inbound]
enabled = false
[privacy]
consent_required = {}
TOML
pw() { "$BIN" --config "$WORK/postwerk.toml" "$@"; }
pw keys create --name bench --scopes send --quiet >/dev/null
pw domains add example.com >/dev/null
export MTA=external MTA_NAME=postwerk URGENT_MODE=after
export URGENT_HEADERS="X-Postwerk-Stream: transactional"
export MTA_START_CMD="POSTWERK_LOG=warn '$BIN' --config '$WORK/postwerk.toml' serve >>'$WORK/serve.log' 2>&1 & echo \$! >'$WORK/pid'; for i in \$(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT_IN) 2>/dev/null && break; sleep 0.1; done"
export MTA_STOP_CMD="kill \$(cat '$WORK/pid') 2>/dev/null; sleep 1"
if [ "$POSTFIX" = 1 ]; then
  (unset MTA MTA_NAME MTA_START_CMD MTA_STOP_CMD URGENT_HEADERS
   MODE=latency N=$N SIZE=$SIZE RUNS=$RUNS URGENT_MODE=after bash "$MTABENCH") | grep -E "urgent_latency" || true
fi
MODE=latency N=$N SIZE=$SIZE RUNS=$RUNS bash "$MTABENCH" | grep -E "urgent_latency" || true
