#!/usr/bin/env bash
# Build the web app: Rust -> wasm32 -> wasm-bindgen (www/pkg) -> wasm-opt (binaryen 132 from npm).
#
# Env knobs:
#   WASM_OPT=0            skip wasm-opt (debugging)
#   WASM_OPT_LEVEL=-Oz    optimisation level passed to wasm-opt (default -O3)
#   CRATE=name            crate/artifact name (default: flatminima)
#
# Run scripts/setup.sh --build-only first (make build does).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export PATH="$HOME/.cargo/bin:$PATH"

CRATE="${CRATE:-flatminima}"
TARGET=wasm32-unknown-unknown
OUT=www/pkg
# Always this wasm-opt, never /usr/bin/wasm-opt (Debian's binaryen 108 silently breaks wasm-bindgen output).
WASM_OPT_BIN="$ROOT/node_modules/.bin/wasm-opt"
# Features that Rust 1.95's wasm32-unknown-unknown target emits by default (LLVM 20+ defaults) and that
# every current browser supports. wasm-opt must be told about them or it rejects (or, with
# old binaryen, mangles) the module. Keep in sync with the target's defaults:
#   rustc --print cfg --target wasm32-unknown-unknown | grep target_feature
WASM_OPT_FEATURES=(
  --enable-bulk-memory --enable-bulk-memory-opt --enable-nontrapping-float-to-int --enable-sign-ext
  --enable-mutable-globals --enable-reference-types --enable-call-indirect-overlong --enable-multivalue
  # Not a target default: src/web/grid_net.rs opts one function into wasm SIMD (#[target_feature]).
  --enable-simd
)

echo "==> cargo build --lib --release --target $TARGET"
cargo build --lib --release --target "$TARGET"

echo "==> wasm-bindgen $(wasm-bindgen --version | awk '{print $2}') -> $OUT"
rm -rf "$OUT"
wasm-bindgen --target web --out-dir "$OUT" --no-typescript "target/$TARGET/release/$CRATE.wasm"

WASM="$OUT/${CRATE}_bg.wasm"
if [ "${WASM_OPT:-1}" != 0 ]; then
  [ -x "$WASM_OPT_BIN" ] || { echo "build-wasm.sh: $WASM_OPT_BIN missing; run scripts/setup.sh --build-only" >&2; exit 1; }
  level="${WASM_OPT_LEVEL:--O3}"
  echo "==> $("$WASM_OPT_BIN" --version) $level"
  "$WASM_OPT_BIN" "$level" "${WASM_OPT_FEATURES[@]}" "$WASM" -o "$WASM.opt"
  mv "$WASM.opt" "$WASM"
else
  echo "==> wasm-opt skipped (WASM_OPT=0)"
fi

echo "==> shipped files (raw / gzip -9)"
total_raw=0
total_gz=0
shopt -s nullglob
for f in "$OUT"/*.wasm "$OUT"/*.js www/*.js www/*.mjs www/*.css www/*.html; do
  raw=$(wc -c <"$f")
  gz=$(gzip -9 -c "$f" | wc -c)
  total_raw=$((total_raw + raw))
  total_gz=$((total_gz + gz))
  printf '  %-34s %9d B %9d B gz\n' "$f" "$raw" "$gz"
done
printf '  %-34s %9d B %9d B gz\n' "total" "$total_raw" "$total_gz"
