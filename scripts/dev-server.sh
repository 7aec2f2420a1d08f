# Sourced by the scripts that start a dev vault of their own (the benchmarks, the API fuzz pass).
#
# start_dev_server BIN ROOT_TOKEN DATA_DIR LOG [SERVER_ARGS...]
#   Starts `BIN server --dev` (the root token in its environment, not on its command line, where
#   `ps` shows it) in the background on a port the OS picks, so that a server left
#   running elsewhere is never the one driven or measured. Sets DEV_SERVER_PID (the caller
#   stops it) and DEV_SERVER_URL (http://127.0.0.1:PORT) once the server says where it
#   listens. If it exits first, or has not said so within 60 s, stops it, prints its log and
#   fails, leaving nothing running.
start_dev_server() {
  local bin=$1 root=$2 dir=$3 log=$4
  shift 4
  : > "$log" # before the loop below reads it
  TIJORI_DEV_ROOT_TOKEN=$root RUST_LOG=warn "$bin" server --dev --data-dir "$dir" \
    --listen 127.0.0.1:0 "$@" > "$log" 2>&1 &
  DEV_SERVER_PID=$!
  DEV_SERVER_URL=""
  for _ in $(seq 600); do
    DEV_SERVER_URL=$(sed -n 's#.*listening on \(http://[^ ]*\).*#\1#p' "$log" | head -n 1)
    [ -n "$DEV_SERVER_URL" ] && return 0
    kill -0 "$DEV_SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill "$DEV_SERVER_PID" 2>/dev/null || true
  wait "$DEV_SERVER_PID" 2>/dev/null || true
  echo "the dev server did not start; its log:" >&2
  cat "$log" >&2
  return 1
}
