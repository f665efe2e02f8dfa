#!/usr/bin/env bash
# Revocation benchmarks (issue 5, "Speed"), release builds, loopback only:
#   1. Revocation latency across replicas: PostgreSQL + three `warden serve`
#      (A, B, C) + demo upstream; steady tools/call load on B and C; disable
#      the org grant through A; time from A's response to the first refused
#      call on B and on C (default write, then ?wait=propagated).
#   2. list_changed fan-out: one `warden serve`, 1,000 live sessions with GET
#      streams + 100 bystander sessions of another org; time from the grant
#      write to `notifications/tools/list_changed` on every stream.
# `warden-bench` starts and stops every process itself (PostgreSQL from
# /usr/lib/postgresql/*/bin or PATH, run as `postgres` when root).
#
# Usage: scripts/bench-revocation.sh [--json]
# Environment: ROUNDS (200), PROPAGATED_ROUNDS (100), CLIENTS_PER_REPLICA (2),
#              SESSIONS (1000), BYSTANDERS (100), TOGGLES (20),
#              FANOUT_DATABASE (sqlite|postgres), JSON_DIR (write both JSON
#              reports there as well), CARGO_TARGET_DIR (default ./target).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$CARGO_TARGET_DIR/release"
FORMAT=()
if [[ "${1:-}" == "--json" ]]; then FORMAT=(--json); fi

echo "==> building release binaries" >&2
cargo build --release --locked -p warden -p warden-loadgen -p warden-bench >&2

echo "==> machine: $(nproc) CPU(s), $(uname -sr), load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

run() {
  local name="$1"; shift
  echo "==> $name" >&2
  local extra=("${FORMAT[@]}")
  if [[ -n "${JSON_DIR:-}" ]]; then
    mkdir -p "$JSON_DIR"
    extra+=(--json-out "$JSON_DIR/$name.json")
  fi
  "$BIN/warden-bench" "$@" "${extra[@]}"
  echo
}

run revocation revocation \
  --rounds "${ROUNDS:-200}" \
  --propagated-rounds "${PROPAGATED_ROUNDS:-100}" \
  --clients-per-replica "${CLIENTS_PER_REPLICA:-2}"

run fanout fanout \
  --sessions "${SESSIONS:-1000}" \
  --bystanders "${BYSTANDERS:-100}" \
  --toggles "${TOGGLES:-20}" \
  --database "${FANOUT_DATABASE:-sqlite}"
