#!/usr/bin/env bash
# Build the web app: Rust -> wasm32 -> wasm-bindgen (www/pkg) -> wasm-opt (binaryen 132 from npm),
# the GPU module the element fetches where WebGPU exists (www/pkg-gpu, feature gpu-page without the
# sandbox), the study module the worker fetches when the study panel's Study is first pressed
# (www/pkg-study, feature study-page without the sandbox), and the benchmark page's module
# (www/pkg-bench, with the bench-page feature). The page's module and its benchmark copy use the
# wasm-page profile (Cargo.toml: the page's code for size, the core at opt-level 3); the GPU and
# study modules the release profile. Then esbuild (from npm, pinned in package.json) minifies the
# element, its worker, the study view and the stylesheet into www/*.min.js / www/flatminima.min.css
# (with source maps; the pages and tests load these, the unminified sources stay as they are), the
# lesson engine into www/lessons/lesson.min.js, and the wasm-bindgen glue of every module in place.
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

ESBUILD="$ROOT/node_modules/.bin/esbuild"
[ -x "$ESBUILD" ] || { echo "build-wasm.sh: $ESBUILD missing; run scripts/setup.sh --build-only" >&2; exit 1; }

# One wasm module: cargo build -> wasm-bindgen into $3 -> wasm-opt -> minified glue.
# $1: cargo profile, $2: extra cargo flags.
build_module() {
  local profile="$1" cargo_flags="$2" out="$3"
  echo "==> cargo build --lib --profile $profile --target $TARGET $cargo_flags"
  # shellcheck disable=SC2086
  cargo build --lib --profile "$profile" --target "$TARGET" $cargo_flags

  echo "==> wasm-bindgen $(wasm-bindgen --version | awk '{print $2}') -> $out"
  rm -rf "$out"
  wasm-bindgen --target web --out-dir "$out" "target/$TARGET/$profile/$CRATE.wasm"
  # The glue minified in place; its source map keeps wasm-bindgen's text for the debugger.
  "$ESBUILD" "$out/$CRATE.js" --minify --sourcemap --format=esm --log-level=warning \
    --allow-overwrite --outfile="$out/$CRATE.js"

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
build_module wasm-page "" "$OUT"
build_module release "--no-default-features --features gpu-page" "$GPU_OUT"
build_module release "--no-default-features --features study-page" "$STUDY_OUT"
build_module wasm-page "--features bench-page" "$BENCH_OUT"

# The element, its worker, the study view and the study helper minified beside their sources (x.js -> x.min.js,
# x.min.js.map); the minified element loads the minified siblings (see MIN in flatminima-sandbox.js).
echo "==> $("$ESBUILD" --version | sed 's/^/esbuild /') -> www/*.min.js, www/flatminima.min.css"
"$ESBUILD" www/flatminima-sandbox.js www/flatminima-worker.js www/flatminima-study-view.js www/flatminima-study-helper.js \
  --minify --sourcemap --format=esm --log-level=warning --outdir=www --out-extension:.js=.min.js
"$ESBUILD" www/flatminima.css --minify --sourcemap --log-level=warning --outfile=www/flatminima.min.css
# The lesson engine with its catalogue and statistics, one file (the lesson pages load it).
"$ESBUILD" www/lessons/lesson.js --bundle --minify --sourcemap --format=esm --log-level=warning \
  --outfile=www/lessons/lesson.min.js

# gzip -9 size of the files named, one line each, and their total.
sizes() {
  local total_raw=0 total_gz=0 f raw gz
  for f in "$@"; do
    raw=$(wc -c <"$f")
    gz=$(gzip -9 -c "$f" | wc -c)
    total_raw=$((total_raw + raw))
    total_gz=$((total_gz + gz))
    printf '  %-36s %9d B %9d B gz\n' "$f" "$raw" "$gz"
  done
  printf '  %-36s %9d B %9d B gz (%s KB)\n' "total" "$total_raw" "$total_gz" "$(awk "BEGIN { printf \"%.1f\", $total_gz / 1000 }")"
}

echo "==> what a reader without WebGPU downloads for the element (raw / gzip -9; target <= 300 KB gz;"
echo "    index.html itself: $(gzip -9 -c www/index.html | wc -c) B gz more)"
sizes "$OUT/${CRATE}_bg.wasm" "$OUT/$CRATE.js" www/flatminima-sandbox.min.js www/flatminima-worker.min.js \
  www/flatminima.min.css
echo "==> ... and for a lesson page (www/lessons/sgd-vs-sam.html)"
sizes "$OUT/${CRATE}_bg.wasm" "$OUT/$CRATE.js" www/flatminima-sandbox.min.js www/flatminima-worker.min.js \
  www/flatminima.min.css www/lessons/sgd-vs-sam.html www/lessons/lesson.min.js www/lessons/lessons.css
echo "==> fetched only where WebGPU has an adapter"
sizes "$GPU_OUT/${CRATE}_bg.wasm" "$GPU_OUT/$CRATE.js"
echo "==> fetched when the study panel's Study is first pressed"
sizes "$STUDY_OUT/${CRATE}_bg.wasm" "$STUDY_OUT/$CRATE.js" www/flatminima-study-view.min.js
