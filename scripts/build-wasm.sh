#!/usr/bin/env bash
# Build the web app: Rust -> wasm32 -> wasm-bindgen (www/pkg) -> wasm-opt (binaryen 132 from npm),
# the GPU module the element fetches where WebGPU exists (www/pkg-gpu, feature gpu-page without the
# sandbox), the study module the worker fetches when the study panel's Study is first pressed
# (www/pkg-study, feature study-page without the sandbox), and the benchmark page's module
# (www/pkg-bench, with the bench-page feature).
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
BENCH_OUT=www/pkg-bench
GPU_OUT=www/pkg-gpu
STUDY_OUT=www/pkg-study
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

# One wasm module: cargo build -> wasm-bindgen into $2 -> wasm-opt. $1: extra cargo flags.
build_module() {
  local cargo_flags="$1" out="$2"
  echo "==> cargo build --lib --release --target $TARGET $cargo_flags"
  # shellcheck disable=SC2086
  cargo build --lib --release --target "$TARGET" $cargo_flags

  echo "==> wasm-bindgen $(wasm-bindgen --version | awk '{print $2}') -> $out"
  rm -rf "$out"
  wasm-bindgen --target web --out-dir "$out" "target/$TARGET/release/$CRATE.wasm"

  local wasm="$out/${CRATE}_bg.wasm"
  if [ "${WASM_OPT:-1}" != 0 ]; then
    [ -x "$WASM_OPT_BIN" ] || { echo "build-wasm.sh: $WASM_OPT_BIN missing; run scripts/setup.sh --build-only" >&2; exit 1; }
    local level="${WASM_OPT_LEVEL:--O3}"
    echo "==> $("$WASM_OPT_BIN" --version) $level"
    "$WASM_OPT_BIN" "$level" "${WASM_OPT_FEATURES[@]}" "$wasm" -o "$wasm.opt"
    mv "$wasm.opt" "$wasm"
  else
    echo "==> wasm-opt skipped (WASM_OPT=0)"
  fi
}

# The module the page ships; the GPU module (the kernels and the core they need, no sandbox);
# the benchmark page's own (the page's code plus the timing exports of src/web/bench.rs).
build_module "" "$OUT"
build_module "--no-default-features --features gpu-page" "$GPU_OUT"
build_module "--no-default-features --features study-page" "$STUDY_OUT"
build_module "--features bench-page" "$BENCH_OUT"

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
echo "==> fetched only where WebGPU has an adapter"
for f in "$GPU_OUT"/*.wasm "$GPU_OUT"/*.js; do
  printf '  %-34s %9d B %9d B gz\n' "$f" "$(wc -c <"$f")" "$(gzip -9 -c "$f" | wc -c)"
done
echo "==> fetched when the study panel's Study is first pressed"
for f in "$STUDY_OUT"/*.wasm "$STUDY_OUT"/*.js; do
  printf '  %-34s %9d B %9d B gz\n' "$f" "$(wc -c <"$f")" "$(gzip -9 -c "$f" | wc -c)"
done
