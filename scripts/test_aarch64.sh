#!/usr/bin/env bash
# Cross-compiles the kernel tests for aarch64 (cmake/toolchain-aarch64.cmake) and runs them
# under qemu-user twice, checking that each run exercised the variant its CPU model has:
#   -cpu cortex-a72  Armv8.0, no dotprod: scalar and neon are tested, neon_dotprod is not;
#   -cpu max         every extension: scalar, neon and neon_dotprod are tested.
# The test selects every available variant in turn, and dispatch logs each selection as
# "kernels: <isa> (", which is what the checks below read.
# Needs g++-aarch64-linux-gnu and qemu-user-static (scripts/setup.sh installs them).
# Environment: BUILD_DIR (default build-aarch64), CI=true makes warnings errors.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${BUILD_DIR:-build-aarch64}
werror=OFF
if [ "${CI:-}" = "true" ]; then werror=ON; fi
sysroot=/usr/aarch64-linux-gnu

cmake -S . -B "$build" -G Ninja --toolchain cmake/toolchain-aarch64.cmake \
  -DCMAKE_BUILD_TYPE=Release -DBITNET_BUILD_TOOLS=OFF -DBITNET_BUILD_BENCH=OFF \
  -DBITNET_WERROR="$werror" >/dev/null
cmake --build "$build" --target test_kernels -j"$(nproc)"
binary="$build/tests/kernels/test_kernels"

failed=0
# run_on CPU EXPECTED_ISAS UNEXPECTED_ISAS
run_on() {
  local cpu=$1 expected=$2 unexpected=$3 log
  log=$(mktemp)
  echo "--- qemu-aarch64 -cpu $cpu" >&2
  if ! qemu-aarch64-static -L "$sysroot" -cpu "$cpu" "$binary" --gtest_color=no >"$log" 2>&1; then
    cat "$log" >&2
    echo "test_aarch64.sh: kernel tests FAILED on -cpu $cpu" >&2
    failed=1
  else
    grep -E '^\[  PASSED  \]|tests? ran' "$log" >&2
  fi
  local isa
  for isa in $expected; do
    if ! grep -q "kernels: $isa (" "$log"; then
      echo "test_aarch64.sh: -cpu $cpu did not exercise $isa" >&2
      failed=1
    fi
  done
  for isa in $unexpected; do
    if grep -q "kernels: $isa (" "$log"; then
      echo "test_aarch64.sh: -cpu $cpu selected $isa, which that CPU lacks" >&2
      failed=1
    fi
  done
  rm -f "$log"
}

run_on cortex-a72 "scalar neon" "neon_dotprod"
run_on max "scalar neon neon_dotprod" ""

if ((failed)); then exit 1; fi
echo "test_aarch64.sh: kernel tests pass on cortex-a72 (neon) and max (neon_dotprod)"
