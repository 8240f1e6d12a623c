#!/usr/bin/env bash
# Decode timing with receipts. Builds the Release CLI if needed, makes the synthetic 2B-4T-shaped
# model if absent, runs `bitnet run` for several -n and thread counts, keeps one JSON receipt per
# run and writes a markdown summary (tokens/s, ms per token, tokens embedded per decode step,
# bytes read per token and the share of the measured memory bandwidth that is).
#
#   scripts/perf_timing.sh [--quick] [--model F] [--out DIR] [--threads "1 2"] [--n "16 64 256"]
#                          [--bw GBps]
#
# --quick: one short run on the small demo model; prints the receipt and checks its schema
# (fields and types, never a speed). CI runs this. Environment: BUILD_DIR (default build).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
model=""
out=""
threads="1 $(nproc)"
n_list="16 64 256"
bw=""
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --model) model=$2; shift ;;
    --out) out=$2; shift ;;
    --threads) threads=$2; shift ;;
    --n) n_list=$2; shift ;;
    --bw) bw=$2; shift ;;
    *) echo "perf_timing.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done

build_dir=${BUILD_DIR:-build}
bitnet="$build_dir/tools/bitnet"
if [ ! -x "$bitnet" ]; then
  echo "perf_timing.sh: building the Release CLI in $build_dir" >&2
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build_dir" --target bitnet -j"$(nproc)"
fi

if ((quick)); then
  model=${model:-tests/data/real-tiny/bitnet-tiny-brown.gguf}
  threads=1
  n_list=16
  out=${out:-$build_dir/perf-quick}
else
  if [ -z "$model" ]; then
    model=models/synth-2b4t-s1.gguf
    if [ ! -f "$model" ]; then
      echo "perf_timing.sh: writing the synthetic 2B-4T model to $model (about 1.2 GB)" >&2
      mkdir -p models
      "$bitnet" synth --preset 2b4t --seed 1 --tokenizer tests/data/tokenizer/tokenizer.json --out "$model"
    fi
  fi
  out=${out:-$build_dir/perf}
fi
mkdir -p "$out"
[ -f "$model" ] || { echo "perf_timing.sh: model '$model' not found" >&2; exit 3; }

prompt="The old lighthouse keeper climbed the narrow stairs every evening to watch the fishing boats return to the harbor."
receipts=()
for t in $threads; do
  for n in $n_list; do
    receipt="$out/receipt-t$t-n$n.json"
    echo "perf_timing.sh: -t $t -n $n" >&2
    "$bitnet" --log-level warn run -m "$model" -p "$prompt" -n "$n" -t "$t" --temp 0 \
      --ignore-eos --no-echo --receipt "$receipt" >/dev/null
    receipts+=("$receipt")
  done
done

# Memory bandwidth per thread count (the decode floor's denominator): the bench probe, or --bw.
bandwidth_file="$out/bandwidth.json"
if ((quick)); then
  echo "{}" >"$bandwidth_file"
else
  {
    echo "{"
    first=1
    for t in $threads; do
      if [ -n "$bw" ]; then
        gbps=$bw
      else
        gbps=$("$bitnet" --log-level warn bench -m "$model" -p 0 -n 1 -r 1 -t "$t" -o json |
          python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["bandwidth_gbps"])')
      fi
      ((first)) || echo ","
      first=0
      echo "\"$t\": $gbps"
    done
    echo "}"
  } >"$bandwidth_file"
fi

python3 - "$out/summary.md" "$bandwidth_file" "$quick" "${receipts[@]}" <<'EOF'
import json, statistics, sys

summary_path, bandwidth_path, quick = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
paths = sys.argv[4:]
bandwidth = json.load(open(bandwidth_path))

# The receipt schema README.md documents: field -> type.
SCHEMA = {
    "schema_version": int, "build_commit": str, "build_type": str, "compiler": str,
    "cpu_info": str, "isa": str, "n_threads": int, "model": dict, "n_prompt": int, "n_gen": int,
    "timings_ms": dict, "decode_ms_per_token": list, "embedded_per_step": list,
    "prompt_ids": list, "generated_ids": list, "stop_reason": str, "peak_rss_bytes": int,
    "decode_bytes_per_token": (int, float),
}
MODEL = {"path": str, "size": int, "architecture": str, "n_params": int}
TIMINGS = ("load", "tokenize", "prefill", "decode", "sample", "total")

def check(path, r):
    errors = []
    for key, typ in SCHEMA.items():
        if key not in r:
            errors.append(f"missing {key}")
        elif not isinstance(r[key], typ) or isinstance(r[key], bool):
            errors.append(f"{key} has type {type(r[key]).__name__}")
    for key, typ in MODEL.items():
        if not isinstance(r.get("model", {}).get(key), typ):
            errors.append(f"model.{key} missing or mistyped")
    for key in TIMINGS:
        if not isinstance(r.get("timings_ms", {}).get(key), (int, float)):
            errors.append(f"timings_ms.{key} missing or mistyped")
    n_gen = r.get("n_gen")
    for key in ("decode_ms_per_token", "embedded_per_step", "generated_ids"):
        if isinstance(r.get(key), list) and len(r[key]) != n_gen:
            errors.append(f"{key} has {len(r[key])} entries for n_gen {n_gen}")
    if errors:
        sys.exit(f"perf_timing.sh: {path}: receipt schema: " + "; ".join(errors))

rows = []
for path in paths:
    r = json.load(open(path))
    check(path, r)
    ms = r["decode_ms_per_token"]
    decode_s = r["timings_ms"]["decode"] / 1e3
    tps = len(ms) / decode_s if decode_s > 0 else 0.0
    bw = bandwidth.get(str(r["n_threads"]))
    achieved = r["decode_bytes_per_token"] * tps / 1e9
    rows.append({
        "threads": r["n_threads"], "n": r["n_gen"], "isa": r["isa"],
        "prefill": r["prefill_tokens_per_s"], "tps": tps,
        "ms_mean": statistics.mean(ms) if ms else 0.0,
        "ms_median": statistics.median(ms) if ms else 0.0,
        "embedded": max(r["embedded_per_step"]) if r["embedded_per_step"] else 0,
        "mb": r["decode_bytes_per_token"] / 1e6, "gbs": achieved,
        "share": f"{100 * achieved / bw:.1f} %" if bw else "-",
    })

first = json.load(open(paths[0]))
lines = [
    f"# Decode timing: {first['model']['path']}",
    "",
    f"- build {first['build_commit']} ({first['build_type']}, {first['compiler']})",
    f"- cpu: {first['cpu_info']}",
    f"- model: {first['model']['architecture']}, {first['model']['n_params']:,} parameters, "
    f"{first['model']['size']:,} bytes",
    f"- memory bandwidth (streaming-read probe): "
    + (", ".join(f"{t} threads {g:.2f} GB/s" for t, g in bandwidth.items()) or "not measured"),
    "",
    "| threads | n | isa | prefill t/s | decode t/s | ms/token mean | ms/token median "
    "| embedded/step (max) | MB read/token | GB/s | share of bandwidth |",
    "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
]
for x in rows:
    lines.append(
        f"| {x['threads']} | {x['n']} | {x['isa']} | {x['prefill']:.1f} | {x['tps']:.2f} "
        f"| {x['ms_mean']:.2f} | {x['ms_median']:.2f} | {x['embedded']} | {x['mb']:.1f} "
        f"| {x['gbs']:.2f} | {x['share']} |")
open(summary_path, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
if quick:
    print(json.dumps(first, indent=2))
    print("perf_timing.sh: receipt schema ok", file=sys.stderr)
EOF
echo "perf_timing.sh: receipts and summary.md in $out" >&2
