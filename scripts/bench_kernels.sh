#!/usr/bin/env bash
# Builds bench_kernels (Release) and runs it: medians of 5 repetitions, the full results as
# JSON, and a closing table of each kernel's share of the bandwidth and int8 MAC peak
# measured in the same run. Extra arguments go to the benchmark (e.g. --benchmark_filter=avx2).
# Environment: BUILD_DIR (default build), OUT (JSON path, default $BUILD_DIR/bench_kernels.json).
set -euo pipefail
cd "$(dirname "$0")/.."

build=${BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target bench_kernels -j"$(nproc)"
exec "$build/bench/bench_kernels" --benchmark_repetitions=5 \
  --benchmark_out="${OUT:-$build/bench_kernels.json}" --benchmark_out_format=json "$@"
