#!/usr/bin/env bash
# Idempotent toolchain setup for flatminima. Fast (about a second) when everything is in place.
#
#   scripts/setup.sh               everything: wasm toolchain, npm tools, wasm-pack, geckodriver,
#                                  Chromium, Firefox ESR + lavapipe (apt)
#   scripts/setup.sh --build-only  only what `make build` / `make demo` need: wasm32 target,
#                                  wasm-bindgen CLI, npm tools (binaryen's wasm-opt, esbuild). Same as SETUP_BUILD_ONLY=1.
#   scripts/setup.sh --no-apt      everything except apt packages (no root needed). Same as SETUP_NO_APT=1.
#
# Never installs Debian's `binaryen`: its wasm-opt 108 silently breaks current wasm-bindgen output.
# The wasm-opt we use is node_modules/.bin/wasm-opt from the npm package binaryen@132.0.0.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

WASM_PACK_VERSION="0.15.1"
APT_PACKAGES=(chromium chromium-driver firefox-esr mesa-vulkan-drivers fonts-liberation)
# geckodriver drives firefox-esr for tests/e2e/firefox.test.mjs (npm's geckodriver package
# downloads a binary at install and fails offline; cargo builds it from crates.io).
GECKODRIVER_VERSION="0.37.1"
WASM_TARGET="wasm32-unknown-unknown"

BUILD_ONLY="${SETUP_BUILD_ONLY:-0}"
NO_APT="${SETUP_NO_APT:-0}"
for arg in "$@"; do
  case "$arg" in
    --build-only | --demo) BUILD_ONLY=1 ;;
    --no-apt) NO_APT=1 ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

say() { printf '%-8s %s\n' "$1" "$2"; }

# --- Rust on PATH -----------------------------------------------------------------------------
if [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo >/dev/null || { echo "setup.sh: cargo not found (install Rust with rustup first)" >&2; exit 1; }

# --- rustup target + components -----------------------------------------------------------------
if rustup target list --installed | grep -qx "$WASM_TARGET"; then
  say ok "rustup target $WASM_TARGET"
else
  say install "rustup target $WASM_TARGET"
  rustup target add "$WASM_TARGET"
fi
if [ "$BUILD_ONLY" != 1 ]; then
  installed_components="$(rustup component list --installed)"
  for comp in clippy rustfmt; do
    if grep -q "^$comp" <<<"$installed_components"; then
      say ok "rustup component $comp"
    else
      say install "rustup component $comp"
      rustup component add "$comp"
    fi
  done
fi

# --- wasm-bindgen CLI, same version as the wasm-bindgen crate in Cargo.lock ---------------------
if [ ! -f Cargo.lock ]; then
  say install "Cargo.lock (cargo generate-lockfile)"
  cargo generate-lockfile
fi
WB_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/^version = "|"$/, ""); print; exit }' Cargo.lock)"
if [ -z "$WB_VERSION" ]; then
  # Fall back to the exact pin in Cargo.toml (wasm-bindgen = "=X").
  WB_VERSION="$(sed -n 's/^wasm-bindgen *= *"=\([0-9.]*\)".*/\1/p' Cargo.toml | head -n1)"
fi
[ -n "$WB_VERSION" ] || { echo "setup.sh: cannot find the wasm-bindgen version in Cargo.lock or Cargo.toml" >&2; exit 1; }

have_wb="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
have_runner="$(wasm-bindgen-test-runner --version 2>/dev/null | awk '{print $2}' || true)"
if [ "$have_wb" = "$WB_VERSION" ] && [ "$have_runner" = "$WB_VERSION" ]; then
  say ok "wasm-bindgen $WB_VERSION (+ wasm-bindgen-test-runner)"
else
  say install "wasm-bindgen-cli $WB_VERSION (had: ${have_wb:-none}; takes ~2 min)"
  # No --locked: the CLI's own lock names a crate version crates.io no longer serves.
  cargo install wasm-bindgen-cli --version "$WB_VERSION" --force
fi

# --- npm tools: binaryen (wasm-opt), esbuild (minifies the page's JS and CSS) + playwright-core, pinned by package-lock.json ---
# The stamp records the sha256 of package-lock.json that node_modules was installed from.
STAMP="node_modules/.flatminima-lock.sha256"
lock_sha="$(sha256sum package-lock.json | awk '{print $1}')"
if [ -x node_modules/.bin/wasm-opt ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$lock_sha" ]; then
  say ok "npm packages ($(node_modules/.bin/wasm-opt --version | awk '{print "wasm-opt", $3}'))"
else
  say install "npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sha" >"$STAMP"
  say ok "npm packages ($(node_modules/.bin/wasm-opt --version | awk '{print "wasm-opt", $3}'))"
fi

if [ "$BUILD_ONLY" = 1 ]; then
  exit 0
fi

# --- wasm-pack (only for `wasm-pack test/build` by hand; make targets do not need it) -----------
have_wp="$(wasm-pack --version 2>/dev/null | awk '{print $2}' || true)"
if [ "$have_wp" = "$WASM_PACK_VERSION" ]; then
  say ok "wasm-pack $WASM_PACK_VERSION"
else
  say install "wasm-pack $WASM_PACK_VERSION (had: ${have_wp:-none}; takes ~2 min)"
  cargo install --locked wasm-pack --version "$WASM_PACK_VERSION" --force
fi

# --- geckodriver (the Firefox e2e test; built from crates.io, ~3 min) ----------------------------
have_gd="$(geckodriver --version 2>/dev/null | awk 'NR==1 {print $2}' || true)"
if [ "$have_gd" = "$GECKODRIVER_VERSION" ]; then
  say ok "geckodriver $GECKODRIVER_VERSION"
else
  say install "geckodriver $GECKODRIVER_VERSION (had: ${have_gd:-none}; takes ~3 min)"
  cargo install --locked geckodriver --version "$GECKODRIVER_VERSION" --force
fi

# --- apt: headless Chromium + chromedriver, Firefox ESR (browser tests) and lavapipe (native wgpu tests)
if [ "$NO_APT" = 1 ]; then
  say skip "apt packages (${APT_PACKAGES[*]})"
  exit 0
fi
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" = "install ok installed" ]; then
    say ok "apt $pkg"
  else
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  say install "apt ${missing[*]}"
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup.sh: need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1; }
    SUDO=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi
for bin in /usr/bin/chromium /usr/bin/chromedriver /usr/bin/firefox-esr; do
  [ -x "$bin" ] || { echo "setup.sh: $bin missing after install" >&2; exit 1; }
done
