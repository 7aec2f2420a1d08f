#!/usr/bin/env bash
# Bulk-import benchmark: generates N card numbers (Luhn-valid, 4xxx) as a CSV file, starts a
# dev vault on a fresh data dir, and times `tijori import` of the file. Prints the import's own
# progress and rate, its CPU time (GNU time), and the server's peak memory. Figures, not
# assertions.
#
#   scripts/import-bench.sh [BIN] [ROWS]       default: target/release/tijori, 1000000 rows
set -euo pipefail
BIN=${1:-target/release/tijori}
ROWS=${2:-1000000}
ROOT=bench-root-token
WORK=$(mktemp -d)
SERVER=""
cleanup() {
  [ -n "$SERVER" ] && { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
  rm -rf "$WORK"
}
trap cleanup EXIT

python3 - "$ROWS" "$WORK/cards.csv" "$(dirname "$0")" <<'PY'
import random, sys
rows, path = int(sys.argv[1]), sys.argv[2]
sys.dont_write_bytecode = True  # no __pycache__ in the repository
sys.path.insert(0, sys.argv[3])
from cards import card
rng = random.Random(7)
with open(path, "w") as f:
    f.write("id,pan\n")
    for i in range(rows):
        f.write(f"{i},{card(rng)}\n")
PY

# shellcheck source=scripts/dev-server.sh
. "$(dirname "$0")/dev-server.sh"
start_dev_server "$BIN" "$ROOT" "$WORK/data" "$WORK/server.log"
SERVER=$DEV_SERVER_PID
KEY=$(curl -sf -X POST "$DEV_SERVER_URL/v1/principals" -H "Authorization: Bearer $ROOT" \
  -d '{"name":"import","roles":["tokenizer"]}' | python3 -c 'import sys,json;print(json.load(sys.stdin)["api_key"])')

/usr/bin/time -f "import client: user %U s, sys %S s" "$BIN" import --addr "$DEV_SERVER_URL" --token "$KEY" --type card_number --column pan \
  --out "$WORK/cards.tokens.csv" "$WORK/cards.csv" > /dev/null
echo "server peak RSS: $(awk '/VmHWM/{printf "%.0f MiB", $2/1024}' /proc/$SERVER/status)"
