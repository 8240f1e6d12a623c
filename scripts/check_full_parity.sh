#!/usr/bin/env bash
# Full-size parity check (not in CI): regenerates the 2B-4T-shaped synthetic model with the
# fixture generator from ../shared (1.19 GB, ~1 min, ~2 GB RAM), checks its sha256, then runs
# `bitnet run` greedily with EOS ignored on every prompt of
# tests/data/reference/real-full-s1.json and compares prompt and generated ids with
# bitnet.cpp's: every id must be equal.
#
#   scripts/check_full_parity.sh        env: SHARED (../shared), BUILD_DIR (build), THREADS (2)
set -euo pipefail
cd "$(dirname "$0")/.."

shared=${SHARED:-../shared}
build=${BUILD_DIR:-build}
threads=${THREADS:-2}
ref=tests/data/reference/real-full-s1.json
model=models/full-s1-i2_s.gguf

if [[ ! -f $shared/tools/synth_bitnet_gguf.py ]]; then
  echo "check_full_parity.sh: $shared/tools/synth_bitnet_gguf.py not found (set SHARED)" >&2
  exit 2
fi

want_sha=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['model']['sha256'])" "$ref")
if [[ ! -f $model ]] || [[ $(sha256sum "$model" | cut -d' ' -f1) != "$want_sha" ]]; then
  mkdir -p models
  tok=$shared/fixtures/tokenizer/llama3
  echo "generating $model ..." >&2
  /usr/bin/python3 "$shared/tools/synth_bitnet_gguf.py" --preset full --seed 1 \
    --tokenizer "$tok/tokenizer.json" --tokenizer-config "$tok/tokenizer_config.json" \
    --i2s --out "$model"
  got_sha=$(sha256sum "$model" | cut -d' ' -f1)
  if [[ $got_sha != "$want_sha" ]]; then
    echo "check_full_parity.sh: $model sha256 $got_sha, expected $want_sha" >&2
    exit 1
  fi
fi

if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --target bitnet -j2 >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 - "$ref" "$work" "$build/tools/bitnet" "$model" "$threads" <<'PY'
import json, subprocess, sys
ref_path, work, exe, model, threads = sys.argv[1:6]
ref = json.load(open(ref_path))
failed = 0
for run in ref["runs"]:
    name = run["prompt_name"]
    prompt = f"{work}/{name}.txt"
    with open(prompt, "wb") as f:
        f.write(bytes.fromhex(run["prompt_utf8_hex"]))
    receipt = f"{work}/{name}.json"
    subprocess.run([exe, "run", "-m", model, "-f", prompt, "-n", str(run["n_predict"]),
                    "-c", str(run["n_ctx"]), "-t", threads, "--temp", "0", "--ignore-eos",
                    "--no-echo", "--receipt", receipt], check=True, stdout=subprocess.DEVNULL)
    got = json.load(open(receipt))
    if got["prompt_ids"] != run["prompt_ids"]:
        print(f"{name}: prompt ids differ\n  got {got['prompt_ids']}\n  ref {run['prompt_ids']}")
        failed += 1
        continue
    gen, want = got["generated_ids"], run["gen_ids"]
    verdict = f"all {len(want)} ids equal"
    for i, (a, b) in enumerate(zip(gen, want)):
        if a != b:
            verdict = f"MISMATCH at step {i}: {a} vs reference {b}"
            failed += 1
            break
    else:
        if len(gen) != len(want):
            verdict = f"generated {len(gen)} ids, reference {len(want)}"
            failed += 1
    print(f"{name}: {verdict}; decode {got['decode_tokens_per_s']:.2f} tok/s, "
          f"peak RSS {got['peak_rss_bytes'] / 2**20:.0f} MiB")
sys.exit(1 if failed else 0)
PY
