# flatminima: build, test, demo. Every target first runs the (idempotent, ~0.5 s when warm) setup it needs.
#
#   make check     fast loop, no setup: rustfmt check, native clippy, native unit + fast integration tests
#   make demo      build the wasm app and serve www/ on http://127.0.0.1:$(PORT)/ (no apt, no browser needed)
#   make build     wasm32 release build -> wasm-bindgen -> wasm-opt (binaryen 132 from npm) into www/pkg
#                  (and www/pkg-gpu, www/pkg-study: the GPU and study modules fetched on demand;
#                  www/pkg-bench for bench.html)
#   make test      native tests + wasm tests in headless Chromium + build + end-to-end tests;
#                  the GPU tests run on lavapipe (Vulkan) and SwiftShader (WebGPU, flags in
#                  webdriver.json); under CI=true a missing adapter fails them instead of skipping
#   make bench     criterion benches + browser bench
#   make lint      rustfmt check + clippy (native and wasm32), warnings are errors; the page's JS
#                  type-checked (tsc --noEmit, checkJs) against www/protocol.js and the wasm module's
#                  generated declarations (so it builds the wasm first)
#
# Offline notes:
# - Never the Debian `binaryen` package: its wasm-opt 108 silently breaks wasm-bindgen output. PATH below
#   puts node_modules/.bin (npm binaryen@132.0.0) first, so `wasm-opt` is always the pinned one.
# - wasm-pack (installed by `make setup`, not used by these targets) runs offline as long as
#   wasm-bindgen on PATH matches Cargo.lock and chromedriver is on PATH; else it tries to download them.
#   Use: wasm-pack test --headless --chrome --chromedriver /usr/bin/chromedriver --mode no-install
#        wasm-pack build --target web --mode no-install   (Cargo.toml sets wasm-opt = false for wasm-pack)
#   wasm-pack sets its own CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER, which overrides .cargo/config.toml.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.NOTPARALLEL:
.DEFAULT_GOAL := build

export PATH := $(CURDIR)/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)
# wasm-bindgen-test-runner drives this chromedriver (headless, --no-sandbox added by the runner).
CHROMEDRIVER ?= /usr/bin/chromedriver
export CHROMEDRIVER
# Silences Mesa (lavapipe) warnings in native wgpu tests.
XDG_RUNTIME_DIR ?= /tmp
export XDG_RUNTIME_DIR

PORT ?= 8000
WASM_TARGET := wasm32-unknown-unknown
# The root package's lib + integration tests (tests/*.rs); the CLI crate is native-only.
WASM_TEST_TARGETS := --lib --test '*'

.PHONY: all check setup setup-build build wasm demo serve test test-native test-wasm test-e2e bench lint fmt clean distclean

all: build

# No setup, no wasm, no browser, no GPU: what to run before every commit (seconds once built).
# A new tests/*.rs that needs none of those belongs in FAST_TESTS.
FAST_TESTS := golden pytorch_reference pytorch_knobs training no_alloc landscape schema knobs protocol
CLI_FAST_TESTS := cli cli_landscape cli_knobs
CHECK_TESTS := --lib $(foreach t,$(FAST_TESTS),--test $(t))
check:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo test -p flatminima-core -p flatminima-backend --lib
	cargo test $(CHECK_TESTS)
	cargo test -p flatminima-cli $(foreach t,$(CLI_FAST_TESTS),--test $(t))

setup:
	bash scripts/setup.sh

setup-build:
	bash scripts/setup.sh --build-only

build: setup-build wasm

# wasm build without running setup.
wasm:
	bash scripts/build-wasm.sh

demo: build serve

serve:
	python3 scripts/serve.py --port $(PORT)

test: test-native test-wasm test-e2e

test-native: setup
	cargo test --workspace --all-targets --no-fail-fast
	cargo test --workspace --doc

test-wasm: setup
	CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
	  cargo test --target $(WASM_TARGET) $(WASM_TEST_TARGETS)

# Skipped with a warning while tests/e2e has no *.test.mjs; under CI=true that is an error
# (set E2E_REQUIRED=0 to allow it).
test-e2e: setup build
	shopt -s nullglob; files=(tests/e2e/*.test.mjs); \
	if [ $${#files[@]} -gt 0 ]; then node --test "$${files[@]}"; \
	elif [ -n "$${CI:-}" ] && [ "$${E2E_REQUIRED:-1}" != 0 ]; then echo "test-e2e: no tests/e2e/*.test.mjs found" >&2; exit 1; \
	else echo "test-e2e: WARNING: no tests/e2e/*.test.mjs yet, skipped" >&2; fi

bench: setup build
	cargo bench --workspace
	if [ -f scripts/bench-browser.mjs ]; then node scripts/bench-browser.mjs; \
	else echo "bench: WARNING: scripts/bench-browser.mjs not written yet, browser bench skipped" >&2; fi

lint: setup build
	cargo fmt --all --check
	tsc -p tsconfig.page.json
	tsc -p tsconfig.worker.json
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --target $(WASM_TARGET) $(WASM_TEST_TARGETS) -- -D warnings
	cargo clippy --lib --target $(WASM_TARGET) --features bench-page -- -D warnings
	cargo clippy --lib --target $(WASM_TARGET) --no-default-features --features gpu-page -- -D warnings
	cargo clippy --lib --target $(WASM_TARGET) --no-default-features --features study-page -- -D warnings

fmt:
	cargo fmt --all

clean:
	cargo clean
	rm -rf www/pkg www/pkg-bench www/pkg-gpu www/pkg-study

distclean: clean
	rm -rf node_modules
