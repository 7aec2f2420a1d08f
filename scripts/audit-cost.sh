#!/usr/bin/env bash
# What auditing costs (issue 5, point 6): runs `tijori bench` with the release build and with
# the same source built with `--features unaudited-bench` (no audit records; dev vaults only),
# in turn, round after round (which build goes first alternates), and prints for each workload
# the ratio of audited to unaudited throughput in each round and the median cost, beside each
# build's median server CPU time per item (steadier than throughput on a shared machine).
# Alternating matters: on a shared 2-core VM one build's throughput moves by ±15% between runs.
#
#   scripts/audit-cost.sh [ROUNDS] [SECONDS]      default: 5 rounds, 4 s per workload
#
# Builds both from the checkout (the unaudited one in target/unaudited; cargo rebuilds only
# what changed); AUDITED=BIN and UNAUDITED=BIN use those binaries instead, unbuilt.
# WORKLOADS=tokenize,detokenize runs only those.
# Keeps each run's JSON report in a temporary directory it prints. Figures, not assertions.
set -euo pipefail
ROUNDS=${1:-5}
SECS=${2:-4}
case "$ROUNDS" in ''|*[!0-9]*) ROUNDS=0;; esac
[ "$ROUNDS" -ge 1 ] || { echo "ROUNDS must be a whole number, 1 or more" >&2; exit 2; }
AUDITED=${AUDITED:+$(realpath "$AUDITED")}
UNAUDITED=${UNAUDITED:+$(realpath "$UNAUDITED")}
cd "$(dirname "$0")/.."
if [ -z "${AUDITED:-}" ]; then
  cargo build --release --locked -p tijori-cli --target-dir target
  AUDITED=target/release/tijori
fi
if [ -z "${UNAUDITED:-}" ]; then
  cargo build --release --locked -p tijori-cli --features unaudited-bench --target-dir target/unaudited
  UNAUDITED=target/unaudited/release/tijori
fi
OUT=$(mktemp -d)
echo "reports in $OUT"
run() { # build-name binary round
  "$2" bench --seconds "$SECS" ${WORKLOADS:+--workloads "$WORKLOADS"} \
    --json "$OUT/$1-$3.json" > "$OUT/$1-$3.txt" 2>&1 ||
    { echo "tijori bench failed; its output:" >&2; cat "$OUT/$1-$3.txt" >&2; exit 1; }
}
for r in $(seq "$ROUNDS"); do
  echo "round $r of $ROUNDS ..."
  if [ $((r % 2)) -eq 1 ]; then
    run audited "$AUDITED" "$r"; run unaudited "$UNAUDITED" "$r"
  else
    run unaudited "$UNAUDITED" "$r"; run audited "$AUDITED" "$r"
  fi
done
python3 - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(build, r):
    with open(f"{out}/{build}-{r}.json") as f:
        return {w["workload"]: w for w in json.load(f)["results"]}
runs = [(load("audited", r), load("unaudited", r)) for r in range(1, rounds + 1)]
print(f"{'workload':24} {'audited/s':>10} {'unaudited/s':>12}  ratio in each round{'':{max(0, 6 * rounds - 19)}}  median cost"
      f"  server CPU µs/item: audited unaudited")
for name in runs[0][0]:
    pairs = [(a[name]["items_per_sec"], u[name]["items_per_sec"]) for a, u in runs
             if name in u and u[name]["items_per_sec"] > 0]
    errors = sum(a[name]["errors"] + u[name]["errors"] for a, u in runs if name in u)
    if not pairs:
        print(f"{name:24} no successful unaudited run to compare with ({errors} errors)")
        continue
    ratios = [a / u for a, u in pairs]
    cost = 1 - statistics.median(ratios)
    flag = "  over a fifth" if cost > 0.2 else ""
    flag += f"  ({errors} errors)" if errors else ""
    # The server's CPU time per item is steadier than throughput on a shared machine (it does
    # not count waiting for a core): what auditing adds to each item, whatever the drift.
    def cpu(reports):
        xs = [r[name]["server_cpu_us_per_item"] for r in reports
              if r.get(name, {}).get("server_cpu_us_per_item")]
        return statistics.median(xs) if xs else float("nan")
    print(f"{name:24} {statistics.median(a for a, _ in pairs):10.0f} "
          f"{statistics.median(u for _, u in pairs):12.0f}  "
          f"{' '.join(f'{r:5.2f}' for r in ratios):{max(19, 6 * rounds)}}  {cost:6.0%}"
          f"  {cpu(a for a, _ in runs):8.1f} {cpu(u for _, u in runs):8.1f}{flag}")
PY
