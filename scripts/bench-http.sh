#!/usr/bin/env bash
# Quick HTTP throughput check of a tijori binary with wrk (apt-get install wrk), until the
# `tijori bench` command exists. Starts a dev vault on a fresh data dir, creates a revealer
# principal, then drives POST /v1/tokens and POST /v1/detokenize with 64 keep-alive connections
# (CONNS=N for another number).
# Prints requests/s and p99 latency per workload. Figures, not assertions.
#
#   scripts/bench-http.sh [BIN] [SECONDS]      default: target/release/tijori, 6 s per workload
set -euo pipefail
BIN=${1:-target/release/tijori}
SECS=${2:-6}
PORT=${PORT:-7455}
ROOT=bench-root-token
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT

RUST_LOG=warn "$BIN" server --dev --dev-root-token "$ROOT" --data-dir "$WORK/data" \
  --listen "127.0.0.1:$PORT" > "$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do curl -sf "localhost:$PORT/v1/health" >/dev/null && break; sleep 0.1; done

json() { python3 -c "import sys,json;print(json.load(sys.stdin)[\"$1\"])"; }
KEY=$(curl -sf -X POST "localhost:$PORT/v1/principals" -H "Authorization: Bearer $ROOT" \
  -d '{"name":"bench","roles":["revealer"]}' | json api_key)
TOKEN=$(curl -sf -X POST "localhost:$PORT/v1/tokens" -H "Authorization: Bearer $KEY" \
  -d '{"type":"card_number","value":"4111111111111111"}' | json token)

run() { # name path body
  cat > "$WORK/$1.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $KEY"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$3'
LUA
  printf '%-12s ' "$1"
  wrk -t2 -c"${CONNS:-64}" -d"${SECS}s" --latency -s "$WORK/$1.lua" "http://127.0.0.1:$PORT$2" |
    awk '/Requests\/sec/{r=$2} / 99%/{p=$2} END{printf "%10.0f req/s   p99 %s\n", r, p}'
}
run tokenize /v1/tokens '{"type":"card_number","value":"4111111111111111"}'
run detokenize /v1/detokenize "{\"tokens\":[\"$TOKEN\"]}"
