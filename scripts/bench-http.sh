#!/usr/bin/env bash
# Quick HTTP throughput check of a tijori binary with wrk (apt-get install wrk), until the
# `tijori bench` command exists. Starts a dev vault on a fresh data dir, creates a revealer
# principal, then drives POST /v1/tokens and POST /v1/detokenize with 64 keep-alive connections
# (CONNS=N for another number).
# Prints requests/s and p99 latency per workload, the health check and a trivial authenticated
# request (the ceilings) first. Figures, not assertions. `tijori bench` measures more workloads.
#
#   scripts/bench-http.sh [BIN] [SECONDS]      default: target/release/tijori, 6 s per workload
#
# STORAGE_URL=postgres://...  runs the vault on PostgreSQL (a fresh schema is made and dropped);
# NODES=2 then starts two nodes on it and drives both at once (CONNS split between them).
# TOKENS=2000 reveals that many tokens (made first), each request one picked at random, as
# `tijori bench` does; by default every request reveals the same one.
set -euo pipefail
BIN=${1:-target/release/tijori}
SECS=${2:-6}
NODES=${NODES:-1}
TOKENS=${TOKENS:-1}
ROOT=bench-root-token
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
WORK=$(mktemp -d)
SERVERS=()
STORE_ARGS=()
SCHEMA=""
if [ -n "${STORAGE_URL:-}" ]; then
  SCHEMA="bench_$$"
  psql "$STORAGE_URL" -qc "CREATE SCHEMA $SCHEMA"
  SEP='?'; case "$STORAGE_URL" in *\?*) SEP='&';; esac
  STORE_ARGS=(--storage-url "${STORAGE_URL}${SEP}options=-c%20search_path%3D$SCHEMA")
fi
cleanup() {
  for s in "${SERVERS[@]}"; do kill "$s" 2>/dev/null || true; wait "$s" 2>/dev/null || true; done
  [ -n "$SCHEMA" ] && psql "$STORAGE_URL" -qc "DROP SCHEMA $SCHEMA CASCADE" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=scripts/dev-server.sh
. "$(dirname "$0")/dev-server.sh"
URLS=()
for n in $(seq 0 $((NODES - 1))); do
  start_dev_server "$BIN" "$ROOT" "$WORK/data" "$WORK/server-$n.log" "${STORE_ARGS[@]}"
  SERVERS+=("$DEV_SERVER_PID")
  URLS+=("$DEV_SERVER_URL")
done

json() { python3 -c "import sys,json;print(json.load(sys.stdin)[\"$1\"])"; }
KEY=$(curl -sf -X POST "${URLS[0]}/v1/principals" -H "Authorization: Bearer $ROOT" \
  -d '{"name":"bench","roles":["revealer"]}' | json api_key)
TOKEN=$(curl -sf -X POST "${URLS[0]}/v1/tokens" -H "Authorization: Bearer $KEY" \
  -d '{"type":"card_number","value":"4111111111111111"}' | json token)
# Every node knows the principal before it is driven.
for n in $(seq 0 $((NODES - 1))); do
  for _ in $(seq 100); do
    curl -sf "${URLS[n]}/v1/auth/session" -H "Authorization: Bearer $KEY" >/dev/null && break
    sleep 0.05
  done
done

# TOKENS > 1: a Lua table of that many new tokens, and a request function that reveals one of
# them at random.
PICK=""
if [ "$TOKENS" -gt 1 ]; then
  PICK="$WORK/pick.lua"
  python3 - "${URLS[0]}" "$KEY" "$TOKENS" "$(dirname "$0")" > "$PICK" <<'PY'
import json, random, sys, urllib.request
url, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.dont_write_bytecode = True  # no __pycache__ in the repository
sys.path.insert(0, sys.argv[4])
from cards import card
rng = random.Random()
tokens = []
while len(tokens) < n:
    items = [{"type": "card_number", "value": card(rng)} for _ in range(min(1000, n - len(tokens)))]
    req = urllib.request.Request(
        f"{url}/v1/tokens/batch",
        data=json.dumps({"items": items}).encode(),
        headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    tokens += [i["token"] for i in json.load(urllib.request.urlopen(req))["items"]]
print("local tokens = {" + ",".join(f'"{t}"' for t in tokens) + "}")
print("request = function() return wrk.format(nil, nil, nil, "
      "'{\"tokens\":[\"' .. tokens[math.random(#tokens)] .. '\"]}') end")
PY
fi

run() { # name path body [method] [more Lua]
  cat > "$WORK/$1.lua" <<LUA
wrk.method = "${4:-POST}"
wrk.headers["Authorization"] = "Bearer $KEY"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$3'
LUA
  [ -n "${5:-}" ] && cat "$5" >> "$WORK/$1.lua"
  local conns=$(( ${CONNS:-64} / NODES )) threads=$(( NODES > 1 ? 1 : 2 )) drivers=()
  for n in $(seq 0 $((NODES - 1))); do
    wrk -t"$threads" -c"$conns" -d"${SECS}s" --latency -s "$WORK/$1.lua" \
      "${URLS[n]}$2" > "$WORK/$1-$n.out" &
    drivers+=($!)
  done
  wait "${drivers[@]}"
  printf '%-12s ' "$1"
  cat "$WORK"/"$1"-*.out |
    awk '/Requests\/sec/{r+=$2} / 99%/{p=$2} /Non-2xx/{e+=$NF}
      END{printf "%10.0f req/s   p99 %s (last node)%s\n", r, p, e ? "   " e " answers not 2xx" : ""}'
}
# The ceilings first: the public health check, and a trivial authenticated (and audited) read.
run health /v1/health '' GET
run session /v1/auth/session '' GET
run tokenize /v1/tokens '{"type":"card_number","value":"4111111111111111"}'
run detokenize /v1/detokenize "{\"tokens\":[\"$TOKEN\"]}" POST "$PICK"
