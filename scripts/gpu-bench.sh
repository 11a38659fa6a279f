#!/usr/bin/env bash
# Runs the prebuilt GPU benchmark (crates/backend/benches/gpu.rs) on a machine that has a GPU but
# no Rust toolchain, crate registry or network. Self-contained: bash + coreutils.
#
# Build the binary where cargo works (same OS family, glibc no newer than the target's):
#   cargo bench -p flatminima-backend --bench gpu --no-run
#       # prints "Executable crates/backend/benches/gpu.rs (target/release/deps/gpu-HASH)".
#   cp target/release/deps/gpu-HASH gpu-bench && strip gpu-bench   # optional: smaller to carry
# Then, on the GPU machine:
#   scripts/gpu-bench.sh ./gpu-bench [criterion filter, e.g. replicas]
#
# Needs at run time: the Vulkan loader libvulkan.so.1 (dlopen'ed by wgpu, so ldd does not
# list it) and a Vulkan driver (ICD) for the GPU. Fallbacks, for bare containers:
# - no system loader: put a libvulkan.so.1 next to the binary (e.g. Debian 12's, 450 KB,
#   needs only libc/libm) and it is used via LD_LIBRARY_PATH;
# - NVIDIA driver present (libGLX_nvidia.so.0) but no ICD manifest: one is written to /tmp
#   and named in VK_ICD_FILENAMES.
# Without a usable driver wgpu finds no adapter (or only lavapipe), and the benchmark says
# so in its first line ("GPU benchmarks on ..." / "GPU benchmarks skipped").
# Time: about 1-2 minutes on a real GPU; everything is capped by BENCH_TIMEOUT (default 420 s).
# Output: criterion's report on stdout; also written to $OUT/gpu-bench.txt when OUT is set.
set -uo pipefail

BIN="${1:-${GPU_BENCH_BIN:-}}"
shift || true
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
  echo "usage: $0 PATH_TO_PREBUILT_GPU_BENCH [criterion filter]" >&2
  exit 2
fi
TIMEOUT="${BENCH_TIMEOUT:-420}"
LOG_DIR="${OUT:-$(mktemp -d)}"
LOG="$LOG_DIR/gpu-bench.txt"
# Criterion keeps its baselines here (it would otherwise write ./target/criterion).
export CRITERION_HOME="${CRITERION_HOME:-$(mktemp -d)}"
# Mesa (lavapipe) complains without it; harmless elsewhere.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

{
  echo "== machine"
  uname -srm
  nproc | sed 's/^/cores: /'
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  else
    echo "nvidia-smi: not found"
  fi

  echo "== binary: $BIN"
  # Every dynamic dependency must be a system library present here.
  if command -v ldd >/dev/null; then
    ldd "$BIN"
    if ldd "$BIN" | grep -q "not found"; then
      echo "ERROR: missing shared libraries (above)"
    fi
    ldd "$BIN" | awk '$3 ~ /^\// {print $3}' | grep -vE '/(libc|libm|libgcc_s|libpthread|libdl|librt|ld-linux[^/]*)\.so' \
      | sed 's/^/note: non-core library: /'
  fi
  need=$(grep -ao 'GLIBC_2\.[0-9]*' "$BIN" | sort -t. -k2 -n -u | tail -1)
  have=$(ldd --version 2>/dev/null | head -1 | grep -o '[0-9]*\.[0-9]*$')
  echo "glibc: binary needs ${need:-?}, machine has ${have:-?}"

  echo "== vulkan"
  loader=$( (ldconfig -p 2>/dev/null | grep -o '/.*libvulkan\.so\.1$' | head -1) || true)
  if [ -z "$loader" ]; then
    for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /usr/local/lib; do
      [ -e "$d/libvulkan.so.1" ] && loader="$d/libvulkan.so.1" && break
    done
  fi
  if [ -z "$loader" ] && [ -e "$(dirname "$BIN")/libvulkan.so.1" ]; then
    export LD_LIBRARY_PATH="$(cd "$(dirname "$BIN")" && pwd)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    loader="$(dirname "$BIN")/libvulkan.so.1 (carried, via LD_LIBRARY_PATH)"
  fi
  echo "loader libvulkan.so.1: ${loader:-NOT FOUND (the benchmark will report no adapter)}"
  icds=$(ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json /usr/local/share/vulkan/icd.d/*.json 2>/dev/null)
  echo "ICDs: ${icds:-none found}" | tr '\n' ' '
  echo
  if ! echo "$icds" | grep -qi nvidia && [ -z "${VK_ICD_FILENAMES:-}" ] \
    && ldconfig -p 2>/dev/null | grep -q 'libGLX_nvidia\.so\.0'; then
    printf '{"file_format_version":"1.0.0","ICD":{"library_path":"libGLX_nvidia.so.0","api_version":"1.3.0"}}\n' \
      >/tmp/flatminima_nvidia_icd.json
    export VK_ICD_FILENAMES=/tmp/flatminima_nvidia_icd.json
    echo "wrote an NVIDIA ICD manifest for libGLX_nvidia.so.0"
  fi
  if [ -n "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ]; then
    echo "VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-} VK_DRIVER_FILES=${VK_DRIVER_FILES:-}"
  fi

  echo "== benchmark (timeout ${TIMEOUT}s)"
  start=$(date +%s)
  timeout "$TIMEOUT" "$BIN" --bench --noplot "$@"
  rc=$?
  echo "== exit status $rc after $(( $(date +%s) - start )) s"
  [ "$rc" = 124 ] && echo "timed out: rerun with a filter, e.g. '$0 $BIN boundary'"
  exit "$rc"
} 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
echo "(log: $LOG)"
exit "$rc"
