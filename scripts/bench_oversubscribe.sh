#!/usr/bin/env bash
# Oversubscription benchmark (issue 13): on ONE CPU (taskset), how fast is `-t 2` compared
# with `-t 1`? Target: >= 0.7 for tg and for pp. For each model and test it alternates the
# two thread counts PAIRS times (one `bitnet bench` process each) and prints the median
# of the pairwise ratios t2/t1, so a noisy host moves both sides of a pair alike. Several
# binaries (e.g. an older build as the "before") are measured in the same interleaved run.
#
# usage: scripts/bench_oversubscribe.sh [BINARY...]     (default build/tools/bitnet)
# Environment: PAIRS (default 5), CPU (default 0), MODELS (default: the demo model and
# models/synth-2b4t-s1.gguf when present), TINY_TESTS ("-p 64 -n 64"), REPS (timed runs per bench, 2), BIG_TESTS ("-p 16 -n 8").
set -euo pipefail
cd "$(dirname "$0")/.."

pairs=${PAIRS:-5}
cpu=${CPU:-0}
binaries=("$@")
[ ${#binaries[@]} -gt 0 ] || binaries=(build/tools/bitnet)
models=${MODELS:-tests/data/real-tiny/bitnet-tiny-brown.gguf}
if [ -z "${MODELS:-}" ] && [ -f models/synth-2b4t-s1.gguf ]; then
  models="$models models/synth-2b4t-s1.gguf"
fi

# tok/s of one test: bench_ts BINARY MODEL THREADS TEST-FLAGS...
bench_ts() {
  local bin=$1 model=$2 threads=$3
  shift 3
  taskset -c "$cpu" "$bin" bench -m "$model" -t "$threads" -r "${REPS:-2}" -o json --log-level error "$@" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["avg_ts"])'
}

printf '%-28s %-44s %-6s %10s %10s %8s\n' binary model test "t1 tok/s" "t2 tok/s" "t2/t1"
for model in $models; do
  case $model in
    *synth-2b4t*) tests=${BIG_TESTS:-"-p 16 -n 8"} ;;
    *) tests=${TINY_TESTS:-"-p 64 -n 64"} ;;
  esac
  read -r -a t <<<"$tests" # -p P -n N
  declare -A t1 t2
  for kind in pp tg; do
    if [ "$kind" = pp ]; then
      flags=(-p "${t[1]}" -n 0) name=pp${t[1]}
    else
      flags=(-p 0 -n "${t[3]}") name=tg${t[3]}
    fi
    for bin in "${binaries[@]}"; do t1[$bin]=""; t2[$bin]=""; done
    for _ in $(seq "$pairs"); do
      for bin in "${binaries[@]}"; do
        t1[$bin]+="$(bench_ts "$bin" "$model" 1 "${flags[@]}") "
        t2[$bin]+="$(bench_ts "$bin" "$model" 2 "${flags[@]}") "
      done
    done
    for bin in "${binaries[@]}"; do
      python3 - "$bin" "$model" "$name" "${t1[$bin]}" "${t2[$bin]}" <<'PY'
import statistics as st, sys
bin, model, test, a, b = sys.argv[1:]
a = [float(x) for x in a.split()]; b = [float(x) for x in b.split()]
r = st.median(y / x for x, y in zip(a, b))
print(f"{bin[-28:]:<28} {model[-44:]:<44} {test:<6} {st.median(a):10.1f} {st.median(b):10.1f} {r:8.3f}")
PY
    done
  done
done
echo "(cpu $cpu via taskset; $pairs alternating pairs; median of the pairwise t2/t1 ratios)"
