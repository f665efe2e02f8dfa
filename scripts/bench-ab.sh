#!/usr/bin/env bash
# Interleaved A/B of two Warden builds on the data-plane bench's calls
# (tools/call echo through /mcp to the demo upstream, concurrency 1 and 32).
#
#   bash scripts/bench-ab.sh <dir A> <dir B> [rounds]
#
# Each dir holds a release `warden`; `warden-loadgen` and
# `warden-demo-upstream` are taken from <dir A>. Both gateways run at once
# (each on its own SQLite file, durable audit on) in front of one upstream.
# Every round measures, per concurrency, the direct call and then A and B
# (the order alternating between rounds), so that the machine's drift
# (large on a shared 2-core machine) falls on both alike. Prints each leg,
# then per build the median over rounds of: the p50 ratio to the same
# round's direct call (c=1), the throughput share of it (c=32), and the
# gateway's CPU per call (user + system over the leg, warm-up included; on
# a direct leg's line, the upstream's).
#
# Environment: DURATION (per leg, default 4s), WARMUP (1s),
#              B_ENV="VAR=value ..." (extra environment for B only, e.g. to
#              compare one binary with and without a setting).
set -euo pipefail

A="${1:?usage: bench-ab.sh <dir A> <dir B> [rounds]}"
B="${2:?usage: bench-ab.sh <dir A> <dir B> [rounds]}"
ROUNDS="${3:-3}"
DURATION="${DURATION:-4s}"
WARMUP="${WARMUP:-1s}"
for f in "$A/warden" "$B/warden" "$A/warden-loadgen" "$A/warden-demo-upstream"; do
  [[ -x "$f" ]] || { echo "no executable $f" >&2; exit 2; }
done
LOADGEN="$A/warden-loadgen"
WORK="$(mktemp -d /tmp/warden-ab.XXXXXX)"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

setsid "$A/warden-demo-upstream" --listen 127.0.0.1:0 >"$WORK/upstream.log" 2>&1 &
PIDS+=("$!")
UP_PID="$!"
for _ in $(seq 1 200); do grep -q '^LISTENING ' "$WORK/upstream.log" && break; sleep 0.05; done
UPSTREAM="http://127.0.0.1:$(awk '/^LISTENING /{print $2; exit}' "$WORK/upstream.log")/mcp"

ADMIN_TOKEN="wadm_ab_$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
declare -A URL KEY PID
start_gateway() { # NAME DIR [ENV...]
  local name="$1" dir="$2" port
  shift 2
  port="$(free_port)"
  env "$@" WARDEN_ADMIN_TOKEN="$ADMIN_TOKEN" RUST_LOG=warn \
    WARDEN_SECRET_KEY="$(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')" \
    setsid "$dir/warden" serve --listen "127.0.0.1:$port" --database-url "sqlite://$WORK/$name.db" \
    >"$WORK/$name.log" 2>&1 &
  PIDS+=("$!")
  PID[$name]="$!"
  local base="http://127.0.0.1:$port"
  for _ in $(seq 1 200); do curl -fsS "$base/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
  admin() { curl -fsS -X "$1" "$base/admin/v1$2" -H "Authorization: Bearer $ADMIN_TOKEN" \
    -H 'content-type: application/json' ${3:+--data "$3"}; }
  admin POST /orgs '{"slug":"bench"}' >/dev/null
  admin POST /servers "{\"slug\":\"demo\",\"transport\":{\"type\":\"http\",\"url\":\"$UPSTREAM\"}}" >/dev/null
  admin PUT /orgs/bench/grants/demo '{"enabled":true,"filter":"*"}' >/dev/null
  KEY[$name]="$(admin POST /orgs/bench/keys '{"name":"bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')"
  URL[$name]="$base/mcp"
}
start_gateway A "$A"
# shellcheck disable=SC2086 # B_ENV is a list of VAR=value words.
start_gateway B "$B" ${B_ENV:-}

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
leg() { # NAME CONC
  local name="$1" c="$2" pid t0 t1
  local args=(--warmup "$WARMUP" --json -c "$c" --duration "$DURATION" --args '{"text":"hello"}')
  if [[ "$name" == direct ]]; then
    pid="$UP_PID"; args+=(--url "$UPSTREAM" --tool echo)
  else
    pid="${PID[$name]}"; args+=(--url "${URL[$name]}" --token "${KEY[$name]}" --tool demo__echo)
  fi
  t0="$(ticks "$pid")"
  "$LOADGEN" "${args[@]}" >"$WORK/leg.json"
  t1="$(ticks "$pid")"
  python3 - "$name" "$c" "$t0" "$t1" "$(getconf CLK_TCK)" "$WARMUP" "$WORK/leg.json" <<'EOF' | tee -a "$WORK/legs.txt"
import json, sys
name, c, t0, t1, tck, w, path = sys.argv[1:]
warmup = float(w[:-2]) / 1000 if w.endswith("ms") else float(w.rstrip("s"))
r = json.load(open(path))
calls = max(r["throughput_rps"] * (r["seconds"] + warmup), 1)
print(f"{name} {c} {r['throughput_rps']:.0f} {r['p50_us']} {1e6 * (int(t1) - int(t0)) / int(tck) / calls:.0f} {r['errors']}")
EOF
}

echo "leg conc req/s p50_us cpu_us_per_call errors"
for round in $(seq 1 "$ROUNDS"); do
  for c in 1 32; do
    leg direct "$c"
    if ((round % 2)); then leg A "$c"; leg B "$c"; else leg B "$c"; leg A "$c"; fi
  done
done

python3 - "$WORK/legs.txt" <<'EOF'
import collections, statistics, sys
legs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, c, rps, p50, cpu, _ = line.split()
    legs[(name, c)].append((float(rps), int(p50), float(cpu)))
print()
for c in ("1", "32"):
    direct = legs[("direct", c)]
    for name in ("A", "B"):
        runs = legs[(name, c)]
        cpu = statistics.median(r[2] for r in runs)
        if c == "1":
            ratio = statistics.median(r[1] / d[1] for r, d in zip(runs, direct))
            print(f"{name} c=1: p50 {ratio:.2f}x direct, CPU {cpu:.0f} us per call (medians of {len(runs)} rounds)")
        else:
            share = statistics.median(r[0] / d[0] for r, d in zip(runs, direct))
            print(f"{name} c=32: {100 * share:.0f} % of direct throughput, CPU {cpu:.0f} us per call (medians of {len(runs)} rounds)")
EOF
