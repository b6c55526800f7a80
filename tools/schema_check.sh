#!/usr/bin/env bash
# The service against its own schema: start `huafeng serve` on a free 127.0.0.1 port with a scratch
# results folder, wait for /v1/health, then let schemathesis (4.32) generate requests from
# /openapi.json and check every answer: no 5xx, every status code, media type, header and body as
# documented, 405s with an Allow header. Bounded (a few examples per operation, a hard time limit) so
# that CI runs it in a few minutes. Exits non-zero on any failure; the server is always stopped.
#
#   tools/schema_check.sh                     # CI's run
#   SCHEMA_EXAMPLES=100 SCHEMA_TIMEOUT=900 tools/schema_check.sh   # a longer hunt
#
# Not checked: positive_data_acceptance (a schema cannot say "bytes that decode as an image", so
# random uploads the schema allows are refused with the documented 415) and the stateful/auth checks
# (no auth, and job ids are random: a generated id is a documented 404).
set -uo pipefail
cd "$(dirname "$0")/.."
EXAMPLES="${SCHEMA_EXAMPLES:-300}"
TIMEOUT="${SCHEMA_TIMEOUT:-240}"
SEED="${SCHEMA_SEED:-16}"
PY="${PYTHON:-python}"
command -v schemathesis >/dev/null 2>&1 || { echo "schemathesis is not installed (pip install -e '.[test]')" >&2; exit 1; }

WORK="$(mktemp -d)"
PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT"
"$PY" -m huafeng.cli serve --port "$PORT" --results "$WORK/results" --results-cap-mb 50 >"$WORK/server.log" 2>&1 &
SERVER=$!
cleanup() {
  kill "$SERVER" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$SERVER" 2>/dev/null
  wait "$SERVER" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

for _ in $(seq 300); do
  curl -fsS -o /dev/null "$URL/v1/health" 2>/dev/null && break
  kill -0 "$SERVER" 2>/dev/null || { echo "huafeng serve exited:" >&2; cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.2
done
curl -fsS -o /dev/null "$URL/v1/health" || { echo "huafeng serve did not answer /v1/health" >&2; exit 1; }

CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance
CHECKS=$CHECKS,response_schema_conformance,unsupported_method,allow_header_conformance
# schemathesis's crash cache off: no run replays an older run's cases, nor leaves .schemathesis/ here
printf '[cache]\nenabled = false\n' >"$WORK/schemathesis.toml"
START=$(date +%s)
# tools/schema_hooks.py: every other upload carries a real small PNG, so the success paths are checked too
SCHEMATHESIS_HOOKS=tools/schema_hooks.py timeout --kill-after=10 "$TIMEOUT" schemathesis --config-file "$WORK/schemathesis.toml" run "$URL/openapi.json" \
  --checks "$CHECKS" --phases examples,coverage,fuzzing,stateful --max-examples "$EXAMPLES" --seed "$SEED" \
  --workers 1 --request-timeout 150 --generation-database none --no-color \
  --suppress-health-check too_slow,data_too_large,filter_too_much,large_base_example \
  --report har --report-har-path "$WORK/requests.har"
rc=$?
echo "schemathesis: exit $rc after $(( $(date +%s) - START )) s (examples per operation: $EXAMPLES, seed $SEED)"
kill -0 "$SERVER" 2>/dev/null || { echo "huafeng serve died during the run:" >&2; tail -50 "$WORK/server.log" >&2; exit 1; }
[ -s "$WORK/requests.har" ] && "$PY" tools/schema_hooks.py "$WORK/requests.har" "$URL/openapi.json"
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then echo "schemathesis ran past $TIMEOUT s" >&2; fi
if [ "$rc" -ne 0 ]; then echo "--- server log (tail) ---" >&2; tail -30 "$WORK/server.log" >&2; fi
exit "$rc"
