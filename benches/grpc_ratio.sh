#!/usr/bin/env bash
# The gRPC path against a trivial call on the same server, in one run (issue 25's method).
#
# Starts `guichet serve` (release build, demo configuration, a fresh data directory) pinned to one
# core, and drives it with h2load pinned to another: first `grpc.health.v1.Health/Check` (the
# floor: a gRPC call that does nothing), then durable `guichet.v1.Interactions/Create` (every
# request a new chat interaction in queue `general`, acknowledged after its journal commit). It
# prints both rates and their ratio, and checks that the server's
# `guichet_interactions_created_total` grew by exactly the number of creations h2load reported:
# gRPC errors travel in trailers with HTTP status 200, so h2load's own count is not enough.
#
#   bash benches/grpc_ratio.sh                 # 2 rounds of 100,000 requests each, 8 x 16 streams
#   REQUESTS=20000 ROUNDS=3 SERVER_CPU=0 CLIENT_CPU=1 bash benches/grpc_ratio.sh
#
# Needs h2load (Debian: nghttp2-client) and taskset (util-linux). Figures: docs/performance.md.
set -euo pipefail

REQUESTS=${REQUESTS:-100000}
CONNECTIONS=${CONNECTIONS:-8}
STREAMS=${STREAMS:-16}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

command -v h2load >/dev/null || { echo "h2load is missing: apt-get install nghttp2-client" >&2; exit 2; }
command -v taskset >/dev/null || { echo "taskset is missing: apt-get install util-linux" >&2; exit 2; }

cd "$(dirname "$0")/.."
cargo build --release --quiet --bin guichet
BIN=target/release/guichet

WORK=$(mktemp -d /tmp/guichet-grpc-ratio.XXXXXX)
SERVER_PID=
KEEP=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; fi
  [ -n "$KEEP" ] || rm -rf "$WORK"
}
trap cleanup EXIT

taskset -c "$SERVER_CPU" "$BIN" serve --data-dir "$WORK/data" \
  --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --smtp-addr 127.0.0.1:0 >"$WORK/log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
  grep -q "^ready" "$WORK/log" 2>/dev/null && break
  sleep 0.1
done
grep -q "^ready" "$WORK/log" || { echo "the server did not start:" >&2; cat "$WORK/log" >&2; exit 1; }
GRPC=$(grep -o "serving gRPC on [0-9.:]*" "$WORK/log" | head -1 | awk '{print $4}')
HTTP=$(grep -o "and HTTP on [0-9.:]*" "$WORK/log" | head -1 | awk '{print $4}')
TOKEN=$("$BIN" token create --data-dir "$WORK/data" --role integrator --label grpc-ratio 2>/dev/null)

# Length-prefixed gRPC messages. Health/Check: an empty HealthCheckRequest. Create: a
# CreateRequest whose spec (field 1) has channel = CHAT (field 2, value 4) and queue = "general"
# (field 3); no id, so the server makes a new interaction for each request.
printf '\x00\x00\x00\x00\x00' >"$WORK/health.bin"
printf '\x00\x00\x00\x00\x0d\x0a\x0b\x10\x04\x1a\x07general' >"$WORK/create.bin"

created() {
  curl -s "http://$HTTP/metrics" | awk '/^guichet_interactions_created_total/ {s += $NF} END {print s + 0}'
}

# Runs h2load on a method; prints its requests per second and the successes it counted.
run() {
  local path=$1 body=$2
  shift 2
  taskset -c "$CLIENT_CPU" h2load -n "$REQUESTS" -c "$CONNECTIONS" -m "$STREAMS" \
    -H 'content-type: application/grpc' -H 'te: trailers' "$@" -d "$body" \
    "http://$GRPC$path" >"$WORK/h2load.out"
  local rate ok
  rate=$(awk '/^finished in/ {print $(NF-2)}' "$WORK/h2load.out")
  ok=$(awk '/^requests:/ {for (i = 2; i <= NF; i++) if ($i == "succeeded,") print $(i - 1)}' "$WORK/h2load.out")
  echo "$rate $ok"
}

# Alternating rounds, so that a change in the machine's load between them shows; the best of
# each is kept.
ROUNDS=${ROUNDS:-2}
health_rate=0 create_rate=0 create_ok=0 health_ok=0
before=$(created)
for _ in $(seq 1 "$ROUNDS"); do
  read -r rate ok < <(run /grpc.health.v1.Health/Check "$WORK/health.bin")
  health_ok=$((health_ok + ok))
  health_rate=$(awk -v a="$health_rate" -v b="$rate" 'BEGIN {print (b > a) ? b : a}')
  read -r rate ok < <(run /guichet.v1.Interactions/Create "$WORK/create.bin" \
    -H "authorization: Bearer $TOKEN")
  create_ok=$((create_ok + ok))
  create_rate=$(awk -v a="$create_rate" -v b="$rate" 'BEGIN {print (b > a) ? b : a}')
done
after=$(created)
counted=$((after - before))
sent=$((REQUESTS * ROUNDS))

echo "requests per round:   $REQUESTS ($CONNECTIONS connections x $STREAMS streams), $ROUNDS rounds of each, server on CPU $SERVER_CPU, h2load on CPU $CLIENT_CPU"
echo "Health/Check:         $health_rate req/s, best round ($health_ok of $sent answered)"
echo "Interactions/Create:  $create_rate req/s, best round ($create_ok of $sent answered, $counted created by /metrics)"
awk -v c="$create_rate" -v h="$health_rate" 'BEGIN {printf "ratio Create/Health:  %.2f (target 0.5 or more)\n", c / h}'
if [ "$counted" -ne "$create_ok" ] || [ "$create_ok" -ne "$sent" ]; then
  echo "MISMATCH: $sent sent, $create_ok answered 2xx, $counted created: see $WORK/log" >&2
  KEEP=1
  exit 1
fi
