#!/usr/bin/env bash
# API fuzz pass: schemathesis drives a fresh dev vault from its own OpenAPI document
# (GET /v1/openapi.json) with a valid credential, and fails on any 5xx, any answer the document
# does not describe (status, content type, headers, body schema), any input the document calls
# invalid that the vault accepts, and any endpoint that answers without its credential.
#
#   scripts/api-fuzz.sh     the bounded run CI makes: 150 examples per operation, fixed seed
#
# Two passes: every operation (POST /v1/sys/seal aside) with a broad service key, then the
# operations only an operator's session may call, with a freshly enrolled operator's session.
#
# Environment:
#   API_FUZZ_MAX_EXAMPLES=N   most test cases per operation in each phase (default 150: about
#                             8,000 requests, 2 minutes against a debug build)
#   API_FUZZ_SEED=N|random    the seed (default 20261125: the same inputs every run)
#   API_FUZZ_MAX_TIME=SECS    fuzz for this long instead, in each pass: schemathesis repeats its
#                             fuzzing and stateful phases until the time is spent (long runs:
#                             API_FUZZ_MAX_TIME=1800 API_FUZZ_SEED=random)
#   API_FUZZ_TIMEOUT=SECS     hard limit on schemathesis, a failure when reached (default 300,
#                             or MAX_TIME + 120)
#   API_FUZZ_WORKERS=N        concurrent schemathesis workers (default 1: Python 3.11's ast module
#                             is not thread-safe, and hypothesis parses source in its workers)
#   API_FUZZ_ARGS="..."       more `schemathesis run` options, e.g. "--phases fuzzing"
#   TIJORI_BIN=PATH           the tijori binary (default: cargo build -p tijori-cli, debug)
#   CARGO_TARGET_DIR          where the binary, the venv and the reports live (default target)
#
# Schemathesis is pinned (SCHEMATHESIS_VERSION, with every dependency in
# scripts/api-fuzz-requirements.txt) and installed into a venv under the target dir, which is
# reused while its version matches. Settings without a command-line option are in
# scripts/api-fuzz.toml, the guard that keeps the fuzzer from locking out its own credential in
# scripts/api_fuzz_hooks.py. Reports (JUnit XML, and the server log) are left in
# $CARGO_TARGET_DIR/api-fuzz/. Needs python3 with venv, curl and timeout.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
TARGET=${CARGO_TARGET_DIR:-target}
VENV="$TARGET/api-fuzz-venv"
OUT="$TARGET/api-fuzz"
MAX_EXAMPLES=${API_FUZZ_MAX_EXAMPLES:-150}
MAX_TIME=${API_FUZZ_MAX_TIME:-}
CAP=${API_FUZZ_TIMEOUT:-$((${MAX_TIME:-180} + 120))}
SEED=${API_FUZZ_SEED:-20261125}
WORKERS=${API_FUZZ_WORKERS:-1}
started=$SECONDS

say() { printf 'api-fuzz: %s\n' "$*" >&2; }

# 1. Schemathesis, pinned, in its own venv.
if [ "$("$VENV/bin/schemathesis" --version 2>/dev/null || true)" != "schemathesis, version $SCHEMATHESIS_VERSION" ]; then
  say "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    -r scripts/api-fuzz-requirements.txt "schemathesis==$SCHEMATHESIS_VERSION"
fi

# 2. The binary.
if [ -z "${TIJORI_BIN:-}" ]; then
  cargo build --quiet --locked -p tijori-cli
  TIJORI_BIN="$TARGET/debug/tijori"
fi

# 3. A fresh dev vault on a free loopback port (the kernel picks it), on a temp data dir.
WORK=$(mktemp -d)
SERVER=""
cleanup() {
  if [ -n "$SERVER" ]; then
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
  fi
  mkdir -p "$OUT"
  [ -f "$WORK/server.log" ] && cp "$WORK/server.log" "$OUT/server.log"
  rm -rf "$WORK"
}
trap cleanup EXIT
ROOT="root-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
# shellcheck source=scripts/dev-server.sh
. scripts/dev-server.sh
start_dev_server "$TIJORI_BIN" "$ROOT" "$WORK/data" "$WORK/server.log"
SERVER=$DEV_SERVER_PID
URL=$DEV_SERVER_URL
say "dev vault at $URL"

# 4. The credential: a service principal with every built-in role that has rights (admin:
# principals, operators, roles, keys; revealer: tokenize, reveal in full, search; data_officer:
# delete, erase; auditor: the trail), so that nearly every operation gets past authorization and
# into its real work. Operator-only operations (logout, password, approvals) answer it 4xx.
json() { python3 -c "import sys, json; print(json.load(sys.stdin)[\"$1\"])"; }
PRINCIPAL=$(curl -sf -X POST "$URL/v1/principals" -H "Authorization: Bearer $ROOT" \
  -H 'Content-Type: application/json' \
  -d '{"name": "api-fuzz", "roles": ["admin", "revealer", "data_officer", "auditor"]}')
KEY=$(json api_key <<<"$PRINCIPAL")
ID=$(json id <<<"$PRINCIPAL")

# Something to find: schemathesis reuses ids and values from the answers it has seen (list
# endpoints included), so a few records let it reach past "404 not found" into the real work:
# another principal (which it may disable, rotate and restrict), an operator awaiting
# enrollment, a custom role, and tokens of several types.
put_data() { # path body [credential [method]]
  curl -sf -o /dev/null -X "${4:-POST}" "$URL$1" -H "Authorization: Bearer ${3:-$KEY}" \
    -H 'Content-Type: application/json' -d "$2"
}
put_data /v1/principals '{"name": "fuzz-target", "roles": ["tokenizer"]}'
put_data /v1/users '{"username": "fuzz-operator", "roles": ["support"]}'
put_data /v1/roles/fuzz-role '{"rules": [{"types": ["text"], "operations": ["tokenize"]}], "expected_version": 0}' "$KEY" PUT
put_data /v1/tokens '{"type": "card_number", "value": "4111 1111 1111 1111", "deterministic": true, "subject": "fuzz-subject"}'
put_data /v1/tokens '{"type": "cnic", "value": "35202-1234567-1", "format": "preserving"}'
put_data /v1/tokens '{"type": "pk_mobile", "value": "0300 1234567", "ttl_seconds": 3600}'
put_data /v1/tokens '{"type": "card_security_code", "value": "123", "ttl_seconds": 600}'
put_data /v1/tokens '{"type": "text", "value": "a note", "metadata": {"source": "api-fuzz"}}'

# 5. The passes. Left out: POST /v1/sys/seal (it would seal the vault, and everything after it
# would be 503 sealed and test nothing; sealing has its own tests). Check left out:
# positive_data_acceptance, which wants every schema-valid body accepted; a schema cannot say
# Luhn, mod-97 or a CNIC's layout, so a well-typed but invalid card number is rightly 422.
rm -rf "$OUT"; mkdir -p "$OUT"
SEED_ARGS=(--seed "$SEED")
[ "$SEED" = random ] && SEED_ARGS=()
fuzz() { # credential report-name [more options]
  local credential=$1 name=$2
  shift 2
  local status=0
  # shellcheck disable=SC2086 # API_FUZZ_ARGS is a list of options
  HYPOTHESIS_STORAGE_DIRECTORY="$VENV/hypothesis" \
  PYTHONPATH=scripts SCHEMATHESIS_HOOKS=api_fuzz_hooks TIJORI_FUZZ_PROTECTED="$ID" \
    timeout --kill-after=10 "$CAP" "$VENV/bin/schemathesis" --config-file scripts/api-fuzz.toml \
    run "$URL/v1/openapi.json" \
    --header "Authorization: Bearer $credential" \
    --checks all --exclude-checks positive_data_acceptance \
    --exclude-operation-id sealVault "$@" \
    --max-examples "$MAX_EXAMPLES" ${MAX_TIME:+--max-time "$MAX_TIME"} "${SEED_ARGS[@]}" \
    --workers "$WORKERS" --generation-database none --request-timeout 30 \
    --no-color --report junit --report-junit-path "$OUT/$name.xml" ${API_FUZZ_ARGS:-} ||
    status=$?
  if [ "$status" -ge 124 ] && [ "$status" -le 137 ]; then
    say "FAIL: schemathesis did not finish within $CAP s (API_FUZZ_TIMEOUT); a request may hang"
  fi
  return "$status"
}
# The server must have survived each pass, and the credentials must still be good (or the
# rest of the pass tested nothing but 401s).
survived() { # credential
  if ! kill -0 "$SERVER" 2>/dev/null; then
    say "FAIL: the server died during the pass"; tail -n 50 "$WORK/server.log" >&2; exit 1
  fi
  if ! curl -sf -o /dev/null "$URL/v1/auth/session" -H "Authorization: Bearer $1"; then
    say "FAIL: the fuzz credential stopped working during the pass"; status=1
  fi
}
status=0
say "pass 1: every operation, as the service principal"
fuzz "$KEY" service || status=1
survived "$KEY"

# An operator (a person: password and one-time code), for the operations only an operator's
# session may call: approving or denying a dual-control request, changing the password. Made
# after pass 1, which may disable or reset every operator it finds (and rotate the root token,
# hence the fuzz key, which it cannot touch).
totp() { # base32 secret: the current RFC 6238 code, as an authenticator app shows it
  python3 - "$1" <<'PY'
import base64, hashlib, hmac, struct, sys, time
secret = sys.argv[1].upper()
key = base64.b32decode(secret + "=" * (-len(secret) % 8))
mac = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
at = mac[-1] & 15
print("%06d" % ((struct.unpack(">I", mac[at:at + 4])[0] & 0x7FFFFFFF) % 1000000))
PY
}
OPERATOR_PASSWORD="fuzz-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
NEW_USER=$(curl -sf -X POST "$URL/v1/users" -H "Authorization: Bearer $KEY" \
  -d '{"username": "fuzz-approver", "roles": ["admin", "auditor"]}')
ENROLLED=$(curl -sf -X POST "$URL/v1/auth/enroll" -d "{\"username\": \"fuzz-approver\",
  \"enrollment_code\": \"$(json enrollment_code <<<"$NEW_USER")\", \"password\": \"$OPERATOR_PASSWORD\"}")
SESSION=$(curl -sf -X POST "$URL/v1/auth/login" -d "{\"username\": \"fuzz-approver\",
  \"password\": \"$OPERATOR_PASSWORD\", \"totp\": \"$(totp "$(json secret <<<"$ENROLLED")")\"}" |
  json session_token)

# Logout is left out: it would end the session the rest of the pass runs on.
say "pass 2: the operator-only operations, as an operator's session"
OPERATOR_OPS=(approveRequest denyRequest changePassword getSession)
fuzz "$SESSION" operator "${OPERATOR_OPS[@]/#/--include-operation-id=}" || status=1

survived "$SESSION"
if grep -q 'panicked' "$WORK/server.log"; then
  say "FAIL: a handler panicked:"; grep -m 5 -A 3 'panicked' "$WORK/server.log" >&2; status=1
fi
say "finished in $((SECONDS - started)) s, exit $status (reports in $OUT)"
exit "$status"
