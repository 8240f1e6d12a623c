#!/usr/bin/env bash
# Cross-compiles the kernel and model parity tests for aarch64 (cmake/toolchain-aarch64.cmake)
# and runs them under qemu-user on two CPU models, checking that each run exercised the
# variants its CPU has and reported the one it lacks:
#   -cpu cortex-a72  Armv8.0, no dotprod: scalar and neon are tested, neon_dotprod is not;
#   -cpu max         every extension: scalar, neon and neon_dotprod are tested.
# Kernel tests: all of them on both CPUs (the test selects every available variant in turn,
# and dispatch logs each selection as "kernels: <isa> (", which the checks below read).
# Model parity with bitnet.cpp: one prompt (pub_english) of each fixture (models A-D and the
# demo model) at 1 and 2 threads, for neon on cortex-a72 and neon_dotprod on max; on
# cortex-a72 the neon_dotprod cases must say "SKIPPED (cpu lacks neon_dotprod)". The other
# prompts and scalar run natively in the Release suite (emulation makes them slow here).
# The attention against ggml's rules (test_model_attention): on max, for all three variants.
# Needs g++-aarch64-linux-gnu and qemu-user-static (scripts/setup.sh).
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
cmake --build "$build" --target test_kernels test_model_parity test_model_attention -j"$(nproc)"

failed=0
fail() {
  echo "test_aarch64.sh: $*" >&2
  failed=1
}

# run_test CPU BINARY LOG [ARGS...]: runs BINARY under qemu with -cpu CPU into LOG.
run_test() {
  local cpu=$1 binary=$2 log=$3
  shift 3
  echo "--- qemu-aarch64 -cpu $cpu $(basename "$binary") $*" >&2
  if ! qemu-aarch64-static -L "$sysroot" -cpu "$cpu" "$binary" --gtest_color=no "$@" >"$log" 2>&1; then
    cat "$log" >&2
    fail "$(basename "$binary") FAILED on -cpu $cpu"
    return
  fi
  grep -E '^\[  (PASSED|SKIPPED) +\] [0-9]+ tests?' "$log" >&2 || true
}

# kernels CPU EXPECTED_ISAS UNEXPECTED_ISAS
kernels() {
  local cpu=$1 expected=$2 unexpected=$3 log isa
  log=$(mktemp)
  run_test "$cpu" "$build/tests/kernels/test_kernels" "$log"
  for isa in $expected; do
    grep -q "kernels: $isa (" "$log" || fail "-cpu $cpu did not exercise $isa"
  done
  for isa in $unexpected; do
    ! grep -q "kernels: $isa (" "$log" || fail "-cpu $cpu selected $isa, which that CPU lacks"
  done
  rm -f "$log"
}

# parity CPU ISA [SKIPPED_ISA]: ISA must pass every selected case; SKIPPED_ISA's cases must
# each be reported skipped because the CPU lacks it.
n_fixtures=5
parity() {
  local cpu=$1 isa=$2 skipped=${3:-} log filter n
  log=$(mktemp)
  filter="Fixtures/Parity.*/*_pub_english_$isa"
  if [ -n "$skipped" ]; then filter+=":Fixtures/Parity.*/*_pub_english_$skipped"; fi
  run_test "$cpu" "$build/tests/model/test_model_parity" "$log" --gtest_filter="$filter"
  n=$(grep -c "^\[       OK \] .*_pub_english_$isa " "$log" || true)
  [ "$n" -eq "$n_fixtures" ] || fail "-cpu $cpu: $n of $n_fixtures $isa parity cases passed"
  if [ -n "$skipped" ]; then
    n=$(grep -c "SKIPPED (cpu lacks $skipped)" "$log" || true)
    [ "$n" -eq "$n_fixtures" ] || fail "-cpu $cpu: $n of $n_fixtures $skipped cases said SKIPPED"
  fi
  rm -f "$log"
}

kernels cortex-a72 "scalar neon" "neon_dotprod"
kernels max "scalar neon neon_dotprod" ""
parity cortex-a72 neon neon_dotprod
parity max neon_dotprod
log=$(mktemp)
run_test max "$build/tests/model/test_model_attention" "$log"
rm -f "$log"

if ((failed)); then exit 1; fi
echo "test_aarch64.sh: kernel and attention tests pass on cortex-a72 (neon) and max" \
  "(neon_dotprod); model parity with bitnet.cpp holds for neon and neon_dotprod (${SECONDS} s with the build)"
