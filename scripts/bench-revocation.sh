#!/usr/bin/env bash
# Revocation benchmarks (issue 5): three release Warden replicas on one real
# PostgreSQL; revocation latency under load and list_changed fan-out to
# SESSIONS live sessions. See scripts/bench_revocation.py.
# Environment: ROUNDS (100), SESSIONS (1000), CARGO_TARGET_DIR (./target).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="$ROOT/e2e/.deps/venv"
if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r e2e/requirements.txt
fi
echo "==> building release binaries" >&2
cargo build --release --locked -p warden -p warden-loadgen >&2
export WARDEN_BIN="$CARGO_TARGET_DIR/release/warden"
export WARDEN_DEMO_UPSTREAM="$CARGO_TARGET_DIR/release/warden-demo-upstream"
exec "$VENV/bin/python" scripts/bench_revocation.py
