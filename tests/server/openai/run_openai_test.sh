#!/usr/bin/env bash
# ctest test_serve_openai: installs the pinned openai client with `npm ci` (into the build
# tree), starts `bitnet serve` on the demo model and runs test_openai_client.mjs against it.
# Usage: run_openai_test.sh <bitnet binary> <model> <work dir>
set -euo pipefail
bin=$1 model=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "FAILED: $tool is not installed (the openai client test needs Node >= 18 and npm)" >&2; exit 1; }
done
mkdir -p "$work"
cp "$here/package.json" "$here/package-lock.json" "$here/test_openai_client.mjs" "$work/"
(cd "$work" && npm ci --no-audit --no-fund --loglevel=error)

prompt="The jury said it did find that"
user="Tell me about the jury."
# (a trailing x keeps the texts' own trailing newlines through $(...); chat ends its turn with one)
expected_run=$("$bin" run -m "$model" -p "$prompt" -n 16 --temp 0 -c 256 -t 2 --no-echo --log-level error; printf x)
expected_run=${expected_run%x}
expected_chat=$(printf '%s\n' "$user" | "$bin" chat -m "$model" -n 16 --temp 0 -c 256 -t 2 --log-level error; printf x)
expected_chat=${expected_chat%x}
expected_chat=${expected_chat%$'\n'}

key=test-key-$$
log="$work/serve.log"
# Emptied here, not only by the server's redirection: that runs in the background child, and the
# loop below could read the previous run's port from the old log before it does.
: >"$log"
"$bin" serve -m "$model" --port 0 -c 512 --parallel 2 -t 2 --api-key "$key" 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
port=""
for _ in $(seq 1 500); do
  port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$log")
  [[ -n "$port" ]] && break
  kill -0 $pid 2>/dev/null || { cat "$log" >&2; echo "FAILED: bitnet serve exited" >&2; exit 1; }
  sleep 0.02
done
[[ -n "$port" ]] || { cat "$log" >&2; echo "FAILED: bitnet serve did not start" >&2; exit 1; }

node "$work/test_openai_client.mjs" "http://127.0.0.1:$port/v1" "$key" "$expected_run" \
  "$expected_chat" "$prompt" "$user"
kill -TERM $pid
wait $pid
trap - EXIT
