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
#   WASM_OPT_LEVEL=-Oz    optimisation level passed to wasm-opt (default -O3; the page's module
#                         also gets --converge --low-memory-unused, see build_module's callers)
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
# $1: cargo profile, $2: extra cargo flags, $3: output folder, $4: extra wasm-opt flags.
build_module() {
  local profile="$1" cargo_flags="$2" out="$3" opt_extra="${4:-}"
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
    echo "==> $("$WASM_OPT_BIN" --version) $level $opt_extra"
    # shellcheck disable=SC2086
    "$WASM_OPT_BIN" "$level" $opt_extra "${WASM_OPT_FEATURES[@]}" "$wasm" -o "$wasm.opt"
    mv "$wasm.opt" "$wasm"
  else
    echo "==> wasm-opt skipped (WASM_OPT=0)"
  fi
}

# The module the page ships; the GPU module (the kernels and the core they need, no sandbox);
# the benchmark page's own (the page's code plus the timing exports of src/web/bench.rs).
# The page's module: --converge repeats the passes until the module stops shrinking and
# --low-memory-unused lets wasm-opt fold constant addresses below 1 KB (the module never uses
# that memory): 3.5 KB gzipped off what every reader downloads (README, "Bundle").
PAGE_OPT="--converge --low-memory-unused"
build_module wasm-page "" "$OUT" "$PAGE_OPT"
build_module release "--no-default-features --features gpu-page" "$GPU_OUT"
build_module release "--no-default-features --features study-page" "$STUDY_OUT"
build_module wasm-page "--features bench-page" "$BENCH_OUT" "$PAGE_OPT"

# The element, its worker, the study view and the study helper minified beside their sources (x.js -> x.min.js,
# x.min.js.map); the minified element loads the minified siblings (see MIN in flatminima-sandbox.js).
echo "==> $("$ESBUILD" --version | sed 's/^/esbuild /') -> www/*.min.js, www/flatminima.min.css"
"$ESBUILD" www/flatminima-sandbox.js www/flatminima-worker.js www/flatminima-study-view.js www/flatminima-study-helper.js \
  --minify --sourcemap --format=esm --log-level=warning --outdir=www --out-extension:.js=.min.js
"$ESBUILD" www/flatminima.css --minify --sourcemap --log-level=warning --outfile=www/flatminima.min.css
# The lesson engine with its statistics (www/lessons/lesson.min.js, which the lesson pages load),
# and each lesson of catalogue/ as a chunk of its own that the engine imports when its page
# opens (www/lessons/chunks/<id>-<hash>.js, plus the checks' shared chunk): a lesson page
# downloads one lesson, not ten.
rm -rf www/lessons/chunks
"$ESBUILD" www/lessons/lesson.js --bundle --splitting --minify --sourcemap --format=esm --log-level=warning \
  --outdir=www/lessons --entry-names='[name].min' --chunk-names='chunks/[name]-[hash]'

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
# A lesson page's own files: its HTML, the engine, the shared chunks (esbuild names them
# chunk-<hash>.js) and its lesson's chunk. The largest lesson is the one to watch.
lesson_files() {
  echo "www/lessons/$1.html www/lessons/lesson.min.js www/lessons/lessons.css" www/lessons/chunks/chunk-*.js \
    www/lessons/chunks/"$1"-*.js
}
largest_lesson=$(for f in www/lessons/chunks/*.js; do
  case "$f" in */chunk-*) ;; *) echo "$(gzip -9 -c "$f" | wc -c) $f" ;; esac
done | sort -n | tail -1 | sed -E 's|.*/([a-z0-9-]+)-[A-Z0-9]+\.js$|\1|')
echo "==> ... and for a lesson page (www/lessons/$largest_lesson.html, the largest lesson)"
# shellcheck disable=SC2046
sizes "$OUT/${CRATE}_bg.wasm" "$OUT/$CRATE.js" www/flatminima-sandbox.min.js www/flatminima-worker.min.js \
  www/flatminima.min.css $(lesson_files "$largest_lesson")
echo "==> fetched only where WebGPU has an adapter"
sizes "$GPU_OUT/${CRATE}_bg.wasm" "$GPU_OUT/$CRATE.js"
echo "==> fetched when the study panel's Study is first pressed"
sizes "$STUDY_OUT/${CRATE}_bg.wasm" "$STUDY_OUT/$CRATE.js" www/flatminima-study-view.min.js
