#!/usr/bin/env bash
# Runs every test: the Release suite, the unit tests under ASan+UBSan, a bounded fuzz run of
# each parser, the kernel and model parity tests for aarch64 under qemu, and a short perf receipt.
# Installs what it needs first (scripts/setup.sh). With CI=true warnings are errors.
# Options: --quick (Release suite only).
set -uo pipefail
cd "$(dirname "$0")/.."

quick=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    *) echo "test.sh: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

setup_flags=()
werror=OFF
if [ "${CI:-}" = "true" ]; then setup_flags+=(--werror); werror=ON; fi
scripts/setup.sh "${setup_flags[@]}" || { echo "test.sh: setup failed" >&2; exit 1; }

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
passed=0
failed=0
failed_steps=()
step() { # step NAME COMMAND...
  local name=$1
  shift
  echo "=== $name" >&2
  local t0=$SECONDS
  if "$@"; then
    passed=$((passed + 1))
    echo "=== $name: ok ($((SECONDS - t0)) s)" >&2
  else
    failed=$((failed + 1))
    failed_steps+=("$name")
    echo "=== $name: FAILED ($((SECONDS - t0)) s)" >&2
  fi
}

# Tests use 2 threads: no parallel ctest jobs.
step "release suite" ctest --test-dir build --output-on-failure

if ((!quick)); then
  asan() {
    cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBITNET_SANITIZE=ON \
      -DBITNET_WERROR="$werror" -DBITNET_BUILD_BENCH=OFF >/dev/null &&
      cmake --build build-asan -j"$(nproc)" &&
      ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        ctest --test-dir build-asan --output-on-failure
  }
  step "asan+ubsan unit tests" asan

  fuzz() {
    cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBITNET_FUZZ=ON \
      -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DBITNET_BUILD_TOOLS=OFF \
      -DBITNET_BUILD_BENCH=OFF -DBITNET_WERROR="$werror" >/dev/null &&
      cmake --build build-fuzz -j"$(nproc)" --target fuzz_all &&
      FUZZ_SECONDS="$FUZZ_SECONDS" ctest --test-dir build-fuzz -L fuzz --output-on-failure
  }
  step "fuzz (${FUZZ_SECONDS} s per target)" fuzz

  step "aarch64 kernels and model parity under qemu" scripts/test_aarch64.sh
  step "perf receipt (quick)" scripts/perf_timing.sh --quick
fi

if ((failed)); then echo "failed steps: ${failed_steps[*]}" >&2; fi
echo "test.sh: $passed passed, $failed failed"
((failed == 0))
