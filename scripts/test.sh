#!/usr/bin/env bash
# The one test command: lint, unit/integration tests, then the end-to-end suite
# against the real `warden` binary with real MCP clients and servers.
#
# Works on a clean Debian machine with Rust, Python 3.11 + pip and Node 20 + npm,
# as root, reaching only package registries: it installs what is missing
# (PostgreSQL via apt, Python deps into e2e/.deps/venv, Node deps into
# e2e/node_modules) and skips installs already done.
#
# Environment:
#   CARGO_TARGET_DIR   cargo target dir (default: ./target)
#   CARGO_INCREMENTAL  0 by default here (a cold run needs no incremental cache)
#   WARDEN_SKIP_LINT=1 skip fmt + clippy (local iteration only)
#   PYTEST_ARGS        extra arguments for pytest (e.g. "-k policy -x")
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
E2E="$ROOT/e2e"
DEPS="$E2E/.deps"
VENV="$DEPS/venv"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Incremental caches only pay off on a rebuild; a CI run is one cold build, and
# they would double the disk it needs.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step() { printf '\n==> %s\n' "$*"; }
sha() { sha256sum "$@" | sha256sum | cut -d' ' -f1; }

# --- PostgreSQL server binaries (replica tests) --------------------------------
find_pg_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then echo "$d"; return 0; fi
  done
  return 1
}
if ! PG_BIN="$(find_pg_bin)"; then
  step "installing PostgreSQL (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  PG_BIN="$(find_pg_bin)"
fi
export WARDEN_PG_BIN="$PG_BIN"

# --- Chromium (the console's browser tests; Playwright drives the system browser) ---
if [[ ! -x /usr/bin/chromium ]]; then
  step "installing chromium (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

# --- Python deps ---------------------------------------------------------------
mkdir -p "$DEPS"
REQ_STAMP="$DEPS/requirements.sha"
if [[ ! -x "$VENV/bin/python" || ! -f "$REQ_STAMP" || "$(cat "$REQ_STAMP")" != "$(sha "$E2E/requirements.txt")" ]]; then
  step "installing Python e2e deps into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$E2E/requirements.txt"
  sha "$E2E/requirements.txt" >"$REQ_STAMP"
fi

# --- Node deps -----------------------------------------------------------------
NPM_STAMP="$DEPS/npm.sha"
if [[ ! -d "$E2E/node_modules" || ! -f "$NPM_STAMP" || "$(cat "$NPM_STAMP")" != "$(sha "$E2E/package.json" "$E2E/package-lock.json")" ]]; then
  step "installing Node e2e deps (npm ci)"
  (cd "$E2E" && npm ci --no-audit --no-fund --loglevel=error)
  sha "$E2E/package.json" "$E2E/package-lock.json" >"$NPM_STAMP"
fi
# The conformance tool needs Node 22: use the pinned `node` package's binary.
NODE22="$E2E/node_modules/node/bin/node"
if ! "$NODE22" --version >/dev/null 2>&1; then
  # npm may skip the `node` package's preinstall (install-script approval); run it.
  (cd "$E2E/node_modules/node" && node installArchSpecificPackage.js)
fi
"$NODE22" --version | grep -q '^v22\.' || { echo "node 22 not available at $NODE22" >&2; exit 1; }
export WARDEN_E2E_NODE="$NODE22"

# --- Rust: lint, build, unit + integration tests ---------------------------------
if [[ "${WARDEN_SKIP_LINT:-0}" != "1" ]]; then
  step "cargo fmt --check"
  cargo fmt --all -- --check
  step "cargo clippy"
  cargo clippy --workspace --all-targets --locked -- -D warnings
  # The bench and build scripts are not run here (minutes each): at least
  # they must parse.
  step "bash -n scripts/*.sh"
  for script in scripts/*.sh; do bash -n "$script"; done
fi

step "cargo build (warden binary)"
cargo build --locked -p warden --bins
export WARDEN_BIN="$CARGO_TARGET_DIR/debug/warden"
[[ -x "$WARDEN_BIN" ]] || { echo "warden binary missing at $WARDEN_BIN" >&2; exit 1; }

step "cargo test"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  # nextest skips doctests; run them too.
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked --no-fail-fast
fi

# --- End-to-end suite ----------------------------------------------------------
step "e2e (pytest)"
set +e
# shellcheck disable=SC2086
(cd "$E2E" && "$VENV/bin/python" -m pytest tests ${PYTEST_ARGS:-})
status=$?
set -e
if [[ $status -eq 5 ]]; then
  echo "pytest collected no tests: failing on purpose" >&2
  exit 1
fi
exit $status
