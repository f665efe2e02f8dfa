#!/usr/bin/env bash
# Profile-guided release build of `warden` (LLVM PGO), on top of the
# release profile's link-time optimization.
#
#   bash scripts/build-pgo.sh        # -> target/pgo/<host triple>/release/warden
#
# 1. builds the ordinary release binaries (the load generator and the demo
#    upstream the training drives, and `warden` itself);
# 2. builds an instrumented `warden` (`-Cprofile-generate`; without LTO, to
#    save time: the counters are per source function either way);
# 3. trains it: `scripts/bench-gateway.sh` against the instrumented
#    gateway (tools/call at concurrency 1 and 32, tools/list over 100
#    servers, idle sessions, identity-provider tokens), then a graceful
#    stop, which writes the profile;
# 4. merges the profile with the toolchain's `llvm-profdata` (rustup
#    component `llvm-tools`, added if missing) and builds `warden` again
#    with `-Cprofile-use`.
#
# The training is the data plane's hot path: any gateway's calls go through
# the same admission, decision, audit and forwarding code. The result is a
# faster build of the same source; nothing in the product depends on it.
#
# Environment: CARGO_TARGET_DIR (default ./target), TRAIN_DURATION (per
#              bench leg, default 4s).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
HOST="$(rustc -vV | sed -n 's/^host: //p')"
WORK="$(mktemp -d /tmp/warden-pgo.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

rustup component add llvm-tools >/dev/null 2>&1 || true
PROFDATA="$(rustc --print sysroot)/lib/rustlib/$HOST/bin/llvm-profdata"
[[ -x "$PROFDATA" ]] || { echo "no llvm-profdata at $PROFDATA (rustup component add llvm-tools)" >&2; exit 2; }

echo "== 1/4 release binaries" >&2
CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --locked -p warden -p warden-loadgen

# `--target` keeps RUSTFLAGS off build scripts and proc macros.
echo "== 2/4 instrumented warden" >&2
CARGO_TARGET_DIR="$TARGET_DIR/pgo-generate" \
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
  RUSTFLAGS="-Cprofile-generate=$WORK/profiles" \
  cargo build --release --locked -p warden --bin warden --target "$HOST"

echo "== 3/4 training" >&2
TRAIN="$WORK/bin"
mkdir -p "$TRAIN"
cp "$TARGET_DIR/pgo-generate/$HOST/release/warden" "$TRAIN/warden"
for b in warden-loadgen warden-demo-upstream warden-bare-proxy; do
  ln -s "$TARGET_DIR/release/$b" "$TRAIN/$b"
done
LLVM_PROFILE_FILE="$WORK/profiles/warden-%p-%m.profraw" \
  BENCH_BIN="$TRAIN" AUTH=token DURATION="${TRAIN_DURATION:-4s}" WARMUP=1s SESSIONS=2000 \
  bash scripts/bench-gateway.sh >"$WORK/training.txt"
ls "$WORK/profiles"/warden-*.profraw >/dev/null 2>&1 || { echo "the training wrote no profile" >&2; exit 1; }
"$PROFDATA" merge -o "$WORK/warden.profdata" "$WORK/profiles"/warden-*.profraw

echo "== 4/4 warden with the profile" >&2
mkdir -p "$TARGET_DIR/pgo"
cp "$WORK/warden.profdata" "$TARGET_DIR/pgo/warden.profdata"
CARGO_TARGET_DIR="$TARGET_DIR/pgo" \
  RUSTFLAGS="-Cprofile-use=$TARGET_DIR/pgo/warden.profdata" \
  cargo build --release --locked -p warden --bin warden --target "$HOST"
echo "$TARGET_DIR/pgo/$HOST/release/warden"
