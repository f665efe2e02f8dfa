#!/usr/bin/env bash
# Gateway load benchmark (issue 4, "Speed"): same run, same machine.
#   1. tools/call to the demo upstream directly vs through Warden (/mcp),
#      concurrency 1 and 32, small payloads: p50/p90/p99 latency + throughput.
#   2. tools/list through /mcp with 100 upstream servers x 50 tools: p50.
#   3. Warden's RSS with 10,000 idle sessions.
# Builds release binaries; Warden runs on a temp SQLite database.
#
# Environment: DURATION (default 10s), WARMUP (2s), SESSIONS (10000),
#              LIMIT_STEP=1 (also measure calls counted by a limit; printed
#              on stderr as LIMITED_<c> <json>),
#              AUTH=token (also measure the same calls through Warden with
#              identity-provider tokens instead of keys, in the same run:
#              each load worker is a distinct person with an RS256 JWT the
#              gateway validates; the provider's JWKS is a static file this
#              script serves on loopback: the bench harness, not a mock of
#              anything under test),
#              CALLS_ONLY=1 (skip the tools/list and idle-session parts),
#              BENCH_PROFILE=debug (debug binaries: only to check the script
#              itself; its figures mean nothing),
#              CARGO_TARGET_DIR (default ./target),
#              BENCH_BIN=<dir> (bench the prebuilt binaries in <dir>, e.g.
#              another worktree's target/release: nothing is built, so a
#              before/after pair can be run alternately from one shell),
#              REFERENCE=nginx,bare (one or both; also measure the same
#              calls, in the same run, through reference proxies:
#              nginx: what any proxy costs on this machine, as an HTTP/1.1
#              reverse proxy with keep-alive upstream connections and, when
#              its stream module is installed, as a plain TCP relay that
#              parses nothing. Needs `nginx` on PATH: `apt-get install
#              nginx-light libnginx-mod-stream` on Debian.
#              bare: `warden-bare-proxy`, the floor of Warden's own stack
#              (hyper server and client, one tokio runtime per core, no
#              Warden logic), alone and with one JSON parse and
#              re-serialization of each body).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-2s}"
SESSIONS="${SESSIONS:-10000}"
PROFILE="${BENCH_PROFILE:-release}"
BIN="${BENCH_BIN:-$CARGO_TARGET_DIR/$PROFILE}"
WORK="$(mktemp -d /tmp/warden-bench.XXXXXX)"
# Every background process runs under `setsid`, leading its own process
# group, and is recorded in PIDS by the main shell (never inside a command
# substitution, whose variables are lost). On any exit (end, error, Ctrl-C,
# SIGTERM) cleanup stops each group, waits, and SIGKILLs what is left after
# 5 s. A foreground process (a load generator run) is started in the
# background and waited for, its id in FG, so that a signal reaches the
# traps at once and cleanup stops it too.
PIDS=()
FG=""

cleanup() {
  trap - EXIT INT TERM
  if [[ -n "$FG" ]]; then kill -TERM "$FG" 2>/dev/null || true; wait "$FG" 2>/dev/null || true; fi
  if ((${#PIDS[@]})); then
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
    setsid bash -c 'sleep 5; for g in "$@"; do kill -KILL -- "-$g" 2>/dev/null; done' _ "${PIDS[@]}" &
    local watchdog=$!
    wait "${PIDS[@]}" 2>/dev/null || true
    kill -- "-$watchdog" 2>/dev/null || true
    wait "$watchdog" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a command in the foreground as far as the caller sees, but so that
# INT/TERM interrupt the wait (bash defers traps while a foreground child
# runs) and cleanup stops it.
fg() {
  "$@" &
  FG=$!
  local rc=0
  wait "$FG" || rc=$?
  FG=""
  return "$rc"
}

if [[ -n "${BENCH_BIN:-}" ]]; then
  for b in warden warden-loadgen warden-demo-upstream warden-bare-proxy; do
    [[ -x "$BIN/$b" ]] || { echo "BENCH_BIN: no executable $BIN/$b" >&2; exit 2; }
  done
  echo "==> benching the binaries in $BIN (not building)" >&2
elif [[ "$PROFILE" == "release" ]]; then
  echo "==> building $PROFILE binaries" >&2
  cargo build --release --locked -p warden -p warden-loadgen >&2
else
  echo "==> building $PROFILE binaries" >&2
  cargo build --locked -p warden -p warden-loadgen >&2
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Start a process that prints `LISTENING <port>`; store the port in VAR.
start_listening() { # VAR LOG CMD...
  local var="$1" log="$2"; shift 2
  setsid "$@" >"$log" 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 1 200); do
    if grep -q '^LISTENING ' "$log"; then
      printf -v "$var" '%s' "$(awk '/^LISTENING /{print $2; exit}' "$log")"
      return 0
    fi
    sleep 0.05
  done
  echo "did not start: $*" >&2; cat "$log" >&2; return 1
}

ADMIN_TOKEN="wadm_bench_$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
SECRET_KEY="$(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')"
WARDEN_PORT="$(free_port)"
WARDEN="http://127.0.0.1:$WARDEN_PORT"

start_warden() {
  WARDEN_ADMIN_TOKEN="$ADMIN_TOKEN" WARDEN_SECRET_KEY="$SECRET_KEY" RUST_LOG="${RUST_LOG:-warn}" \
    WARDEN_MAX_SESSIONS_PER_KEY="$((SESSIONS + 1000))" \
    setsid "$BIN/warden" serve --listen "127.0.0.1:$WARDEN_PORT" --database-url "sqlite://$WORK/warden.db" \
    >"$WORK/warden.log" 2>&1 &
  WARDEN_PID=$!
  PIDS+=("$WARDEN_PID")
  for _ in $(seq 1 200); do
    curl -fsS "$WARDEN/healthz" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "warden did not become healthy" >&2; cat "$WORK/warden.log" >&2; return 1
}

admin() { # METHOD PATH [JSON]
  curl -fsS -X "$1" "$WARDEN/admin/v1$2" -H "Authorization: Bearer $ADMIN_TOKEN" \
    -H 'content-type: application/json' ${3:+--data "$3"}
}
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

loadgen() { fg "$BIN/warden-loadgen" --warmup "$WARMUP" --json "$@"; }

# CPU time (clock ticks, user + system) the processes of a process group
# (each background process leads its own: nginx's workers are in their
# master's) have used so far.
cpu_ticks() {
  local pid total=0
  for pid in $(pgrep -g "$1"); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
# Runs loadgen like `loadgen`, storing its JSON in R[<name>] and in
# CPU[<name>] the CPU ticks the proxy under test (Warden, or nginx for the
# reference legs), the demo upstream and the load generator itself used
# during the whole run (warm-up included): "proxy upstream loadgen".
declare -A CPU
PROXY_PID=""
measured_loadgen() { # NAME LOADGEN-ARGS...
  local name="$1"; shift
  local proxy="${PROXY_PID:-$WARDEN_PID}" w0 u0 w1 u1
  w0="$(cpu_ticks "$proxy")"; u0="$(cpu_ticks "$UP_PID")"
  fg /usr/bin/time -o "$WORK/loadgen.time" -f '%U %S' "$BIN/warden-loadgen" --warmup "$WARMUP" --json "$@" >"$WORK/loadgen.out"
  w1="$(cpu_ticks "$proxy")"; u1="$(cpu_ticks "$UP_PID")"
  CPU[$name]="$((w1 - w0)) $((u1 - u0)) $(awk '{printf "%d", ($1 + $2) * 100}' "$WORK/loadgen.time")"
  R[$name]="$(cat "$WORK/loadgen.out")"
}

echo "==> starting demo upstream and warden" >&2
start_listening UP_PORT "$WORK/upstream.log" "$BIN/warden-demo-upstream" --listen 127.0.0.1:0
UP_PID="${PIDS[-1]}"
UPSTREAM="http://127.0.0.1:$UP_PORT/mcp"
start_warden

admin POST /orgs '{"slug":"bench"}' >/dev/null
admin POST /servers "{\"slug\":\"demo\",\"transport\":{\"type\":\"http\",\"url\":\"$UPSTREAM\"}}" >/dev/null
admin PUT /orgs/bench/grants/demo '{"enabled":true,"filter":"*"}' >/dev/null
KEY="$(admin POST /orgs/bench/keys '{"name":"bench"}' | json_field "['secret']")"

TOKEN_ARGS=()
if [[ "${AUTH:-key}" == "token" ]]; then
  echo "==> identity provider for token mode: RSA key, JWKS served on loopback" >&2
  mkdir -p "$WORK/idp"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/idp-key.pem" 2>/dev/null
  MODULUS="$(openssl rsa -in "$WORK/idp-key.pem" -noout -modulus | cut -d= -f2)"
  python3 - "$MODULUS" >"$WORK/idp/jwks.json" <<'EOF'
import base64, json, sys
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
print(json.dumps({"keys": [{"kty": "RSA", "kid": "bench", "alg": "RS256", "use": "sig",
                            "n": b64(bytes.fromhex(sys.argv[1])), "e": "AQAB"}]}))
EOF
  IDP_PORT="$(free_port)"
  setsid python3 -m http.server "$IDP_PORT" --bind 127.0.0.1 --directory "$WORK/idp" >"$WORK/idp.log" 2>&1 &
  PIDS+=("$!")
  IDP="http://127.0.0.1:$IDP_PORT"
  for _ in $(seq 1 200); do curl -fsS "$IDP/jwks.json" >/dev/null 2>&1 && break; sleep 0.05; done
  admin POST /identity-providers "{\"slug\":\"bench-idp\",\"issuer\":\"$IDP\",\"jwks_uri\":\"$IDP/jwks.json\",\"orgs\":{\"kind\":\"org\",\"org\":\"bench\"},\"required_scopes\":[\"mcp\"]}" >/dev/null
  # The gateway loads providers at the new revision.
  for _ in $(seq 1 200); do
    curl -fsS "$WARDEN/.well-known/oauth-protected-resource/mcp" >/dev/null 2>&1 && break
    sleep 0.05
  done
  TOKEN_ARGS=(--jwt-key "$WORK/idp-key.pem" --jwt-kid bench --jwt-issuer "$IDP" --jwt-audience "$WARDEN/mcp")
fi

# The reference: nginx in front of the same upstream, one worker process
# per CPU as Warden has one connection worker per CPU.
NGINX_HTTP=""
NGINX_TCP=""
has_reference() { [[ ",${REFERENCE:-}," == *",$1,"* ]]; }
if has_reference nginx; then
  command -v nginx >/dev/null || { echo "REFERENCE=nginx: no nginx on PATH (apt-get install nginx-light libnginx-mod-stream)" >&2; exit 2; }
  NGINX_HTTP_PORT="$(free_port)"
  STREAM_MODULE="/usr/lib/nginx/modules/ngx_stream_module.so"
  mkdir -p "$WORK/nginx"
  {
    if [[ -f "$STREAM_MODULE" ]]; then echo "load_module $STREAM_MODULE;"; fi
    cat <<EOF
daemon off;
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/client_body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  upstream demo { server 127.0.0.1:$UP_PORT; keepalive 128; }
  server {
    listen 127.0.0.1:$NGINX_HTTP_PORT;
    location / { proxy_pass http://demo; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
    if [[ -f "$STREAM_MODULE" ]]; then
      NGINX_TCP_PORT="$(free_port)"
      echo "stream { server { listen 127.0.0.1:$NGINX_TCP_PORT; proxy_pass 127.0.0.1:$UP_PORT; } }"
    fi
  } >"$WORK/nginx/nginx.conf"
  setsid nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" >"$WORK/nginx/out.log" 2>&1 &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  for _ in $(seq 1 200); do
    curl -sS -o /dev/null "http://127.0.0.1:$NGINX_HTTP_PORT/" 2>/dev/null && break
    sleep 0.05
  done
  NGINX_HTTP="http://127.0.0.1:$NGINX_HTTP_PORT/mcp"
  [[ -n "${NGINX_TCP_PORT:-}" ]] && NGINX_TCP="http://127.0.0.1:$NGINX_TCP_PORT/mcp"
fi

# The other reference: Warden's stack with nothing of Warden on it.
BARE=""
BARE_JSON=""
if has_reference bare; then
  start_listening BARE_PORT "$WORK/bare.log" "$BIN/warden-bare-proxy" --listen 127.0.0.1:0 --upstream "127.0.0.1:$UP_PORT"
  BARE_PID="${PIDS[-1]}"
  BARE="http://127.0.0.1:$BARE_PORT/mcp"
  start_listening BARE_JSON_PORT "$WORK/bare-json.log" "$BIN/warden-bare-proxy" --listen 127.0.0.1:0 --upstream "127.0.0.1:$UP_PORT" --json
  BARE_JSON_PID="${PIDS[-1]}"
  BARE_JSON="http://127.0.0.1:$BARE_JSON_PORT/mcp"
fi

ARGS='{"text":"hello"}'
declare -A R
for c in 1 32; do
  echo "==> tools/call concurrency $c: direct" >&2
  measured_loadgen "direct_$c" --url "$UPSTREAM" --tool echo --args "$ARGS" -c "$c" --duration "$DURATION"
  echo "==> tools/call concurrency $c: through warden" >&2
  measured_loadgen "warden_$c" --url "$WARDEN/mcp" --token "$KEY" --tool demo__echo --args "$ARGS" -c "$c" --duration "$DURATION"
  if ((${#TOKEN_ARGS[@]})); then
    echo "==> tools/call concurrency $c: through warden with identity-provider tokens" >&2
    measured_loadgen "token_$c" --url "$WARDEN/mcp" "${TOKEN_ARGS[@]}" --tool demo__echo --args "$ARGS" -c "$c" --duration "$DURATION"
  fi
  if [[ -n "$NGINX_HTTP" ]]; then
    echo "==> tools/call concurrency $c: through nginx (HTTP proxy)" >&2
    PROXY_PID="$NGINX_PID" measured_loadgen "nginx_$c" --url "$NGINX_HTTP" --tool echo --args "$ARGS" -c "$c" --duration "$DURATION"
  fi
  if [[ -n "$NGINX_TCP" ]]; then
    echo "==> tools/call concurrency $c: through nginx (TCP relay)" >&2
    PROXY_PID="$NGINX_PID" measured_loadgen "relay_$c" --url "$NGINX_TCP" --tool echo --args "$ARGS" -c "$c" --duration "$DURATION"
  fi
  if [[ -n "$BARE" ]]; then
    echo "==> tools/call concurrency $c: through the bare hyper proxy" >&2
    PROXY_PID="$BARE_PID" measured_loadgen "bare_$c" --url "$BARE" --tool echo --args "$ARGS" -c "$c" --duration "$DURATION"
    echo "==> tools/call concurrency $c: through the bare hyper proxy, JSON re-serialized" >&2
    PROXY_PID="$BARE_JSON_PID" measured_loadgen "barejson_$c" --url "$BARE_JSON" --tool echo --args "$ARGS" -c "$c" --duration "$DURATION"
  fi
done

if [[ "${LIMIT_STEP:-0}" == "1" ]]; then
  # The same calls with the limit step counting every one of them: an
  # org-wide limit (rate and concurrency) too generous to ever refuse.
  admin POST /orgs/bench/limits \
    '{"level":{"kind":"org"},"rate":{"requests":1000000,"per":"minute","burst":1000000},"concurrency":100000}' >/dev/null
  for c in 1 32; do
    echo "==> tools/call concurrency $c: through warden, one limit counting" >&2
    loadgen --url "$WARDEN/mcp" --token "$KEY" --tool demo__echo --args "$ARGS" -c "$c" --duration "$DURATION" >"$WORK/loadgen.out"
    R[limited_$c]="$(cat "$WORK/loadgen.out")"
    echo "LIMITED_$c ${R[limited_$c]}" >&2
  done
fi

if [[ "${CALLS_ONLY:-0}" == "1" ]]; then
  R[list]='null'
  LIST_COUNT=0
  RSS_BEFORE=0
  RSS_AFTER=0
  OPENED=0
else
echo "==> tools/list with 100 servers x 50 tools" >&2
start_listening BIG_PORT "$WORK/upstream-big.log" "$BIN/warden-demo-upstream" --listen 127.0.0.1:0 --extra-tools 46
admin POST /orgs '{"slug":"catalog"}' >/dev/null
for i in $(seq -w 0 99); do
  admin POST /servers "{\"slug\":\"s$i\",\"transport\":{\"type\":\"http\",\"url\":\"http://127.0.0.1:$BIG_PORT/mcp\"}}" >/dev/null
  admin PUT "/orgs/catalog/grants/s$i" '{"enabled":true,"filter":"*"}' >/dev/null
done
CAT_KEY="$(admin POST /orgs/catalog/keys '{"name":"catalog"}' | json_field "['secret']")"
# Longer warm-up: the first lists fetch and cache 100 upstream catalogs.
WARMUP=5s loadgen --url "$WARDEN/mcp" --token "$CAT_KEY" --list -c 1 --duration "$DURATION" >"$WORK/loadgen.out"
R[list]="$(cat "$WORK/loadgen.out")"
LIST_COUNT="$(python3 - "$WARDEN/mcp" "$CAT_KEY" <<'EOF'
import json, sys, urllib.request
url, key = sys.argv[1], sys.argv[2]
def post(body, session=None):
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream",
               "Content-Type": "application/json"}
    if session:
        headers.update({"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"})
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(req) as resp:
        text = resp.read().decode()
        sid = resp.headers.get("mcp-session-id")
    if text.lstrip().startswith("{"):
        return json.loads(text), sid
    for line in text.splitlines():
        if line.startswith("data:") and '"id"' in line:
            return json.loads(line[5:]), sid
    raise SystemExit("no reply")
init, sid = post({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
note = urllib.request.Request(url, data=json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode(),
                              headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                                       "Accept": "application/json, text/event-stream", "Mcp-Session-Id": sid or "",
                                       "MCP-Protocol-Version": "2025-11-25"}, method="POST")
urllib.request.urlopen(note).read()
listing, _ = post({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}, sid)
print(len(listing["result"]["tools"]))
EOF
)"

echo "==> RSS with $SESSIONS idle sessions" >&2
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$WARDEN_PID/status"; }
RSS_BEFORE="$(rss_kib)"
setsid "$BIN/warden-loadgen" --url "$WARDEN/mcp" --token "$KEY" --open-sessions "$SESSIONS" -c 64 --hold 600s \
  >"$WORK/sessions.out" 2>"$WORK/sessions.err" &
HOLDER=$!
PIDS+=("$HOLDER")
for _ in $(seq 1 1200); do
  grep -q '^OPENED ' "$WORK/sessions.out" && break
  kill -0 "$HOLDER" 2>/dev/null || { cat "$WORK/sessions.err" >&2; break; }
  sleep 0.1
done
sleep 2
RSS_AFTER="$(rss_kib)"
OPENED="$(awk '/^OPENED /{print $2}' "$WORK/sessions.out")"
kill -- "-$HOLDER" 2>/dev/null || true
fi

for k in "${!R[@]}"; do printf '%s\t%s\t%s\n' "$k" "${R[$k]}" "${CPU[$k]:-}"; done >"$WORK/legs.tsv"
python3 - "$RSS_BEFORE" "$RSS_AFTER" "${OPENED:-0}" "$LIST_COUNT" "$(getconf CLK_TCK)" "$WARMUP" "$WORK/legs.tsv" <<'EOF'
import json, sys
rss_before, rss_after, opened, list_count = (int(x) for x in sys.argv[1:5])
tck, w, legs_file = int(sys.argv[5]), sys.argv[6], sys.argv[7]
warmup = float(w[:-2]) / 1000 if w.endswith("ms") else float(w.rstrip("s"))
R, CPU = {}, {}
for line in open(legs_file):
    name, result, cpu = line.rstrip("\n").split("\t")
    R[name] = json.loads(result)
    if cpu:
        CPU[name] = [int(t) for t in cpu.split()]
LEGS = [("direct", "direct"), ("warden", "through Warden, key"), ("token", "through Warden, IdP token"),
        ("nginx", "through nginx, HTTP proxy (reference)"), ("relay", "through nginx, TCP relay (reference)"),
        ("bare", "through the bare hyper proxy (reference)"),
        ("barejson", "through the bare hyper proxy, JSON re-serialized (reference)")]
def leg(name, c):
    return R.get(f"{name}_{c}")
print()
print(f"| tools/call (echo) | conc | p50 us | p90 us | p99 us | req/s | errors |")
print(f"|---|---:|---:|---:|---:|---:|---:|")
for c in (1, 32):
    for name, label in LEGS:
        r = leg(name, c)
        if r:
            print(f"| {label} | {c} | {r['p50_us']} | {r['p90_us']} | {r['p99_us']} | {r['throughput_rps']:.0f} | {r['errors']} |")
print()
d1, w1, d32, w32 = leg("direct", 1), leg("warden", 1), leg("direct", 32), leg("warden", 32)
print(f"p50 at concurrency 1 through Warden: {w1['p50_us'] / d1['p50_us']:.2f}x direct (+{w1['p50_us'] - d1['p50_us']} us; target <= 2.0x)")
print(f"throughput through Warden at concurrency 32: {100 * w32['throughput_rps'] / d32['throughput_rps']:.0f}% of direct (target >= 65%)")
for name, label in (("nginx", "nginx as an HTTP proxy"), ("relay", "nginx as a TCP relay"),
                    ("bare", "the bare hyper proxy"), ("barejson", "the bare hyper proxy, JSON re-serialized")):
    a, b = leg(name, 1), leg(name, 32)
    if a and b:
        print(f"reference, {label}: p50 at concurrency 1 {a['p50_us'] / d1['p50_us']:.2f}x direct, "
              f"throughput at concurrency 32 {100 * b['throughput_rps'] / d32['throughput_rps']:.0f}% of direct")
t1, t32 = leg("token", 1), leg("token", 32)
if t1 and t32:
    print(f"tokens vs keys: p50 at concurrency 1 {t1['p50_us'] - w1['p50_us']:+d} us "
          f"(added over direct: {t1['p50_us'] - d1['p50_us']} us with tokens, {w1['p50_us'] - d1['p50_us']} us with keys); "
          f"throughput at concurrency 32 {100 * t32['throughput_rps'] / w32['throughput_rps']:.0f}% of keys, "
          f"{100 * t32['throughput_rps'] / d32['throughput_rps']:.0f}% of direct")
lst = R.get("list")
if lst:
    print(f"tools/list via /mcp, 100 servers x 50 tools ({list_count} tools listed): p50 {lst['p50_us'] / 1000:.2f} ms, "
          f"p99 {lst['p99_us'] / 1000:.2f} ms (target p50 <= 2 ms)")
print()
print("CPU per call, us (user + system over the whole run, warm-up included; calls = req/s x run time):")
print("| tools/call (echo) | conc | proxy (Warden or reference) | upstream | load generator | all three |")
print("|---|---:|---:|---:|---:|---:|")
for c in (1, 32):
    for name, label in LEGS:
        r, key = leg(name, c), f"{name}_{c}"
        if not r or key not in CPU:
            continue
        calls = r["throughput_rps"] * (r["seconds"] + warmup)
        per = [1e6 * t / tck / max(calls, 1) for t in CPU[key]]
        print(f"| {label.replace(' (reference)', '')} | {c} | {per[0]:.0f} | {per[1]:.0f} | {per[2]:.0f} | {sum(per):.0f} |")
if opened:
    print(f"RSS with {opened} idle sessions: {rss_after / 1024:.1f} MiB (before: {rss_before / 1024:.1f} MiB, "
          f"{(rss_after - rss_before) / max(opened, 1):.2f} KiB/session)")
EOF
