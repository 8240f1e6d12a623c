#!/usr/bin/env python3
"""The three `bitnet serve` targets of issue 16, measured in one run over loopback.

  1. throughput: N concurrent streaming clients x 64 tokens vs one client alone
     (aggregate generated tok/s; target >= 2.5x), alternated over --rounds, median ratio;
  2. ttft: time to first token of a 128-token prompt alone, and while 3 others stream
     (target <= 1.5 x alone + 2 decode steps, a step from the single-client run);
  3. soak: --requests requests (default 200) from 8 concurrent clients, mixed lengths, about
     one in five cancelled mid-stream: no failure but intended 503s, 0 busy slots at the end,
     RSS flat after the first 20.

Standard library only. Example (the issue's setting):
  scripts/bench_serve.py --bitnet build/tools/bitnet -m models/synth-2b4t-s1.gguf -t 2 --parallel 4
"""
import argparse
import http.client
import json
import random
import re
import statistics
import subprocess
import sys
import threading
import time


def request(port, path, body=None, timeout=600):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("POST" if body is not None else "GET", path,
              json.dumps(body) if body is not None else None,
              {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def stream(port, body, cancel_after=None, stop=None):
    """Streams a completion. Returns (status, t_first_token, t_end, completion_tokens).
    cancel_after: close the connection after that many text events; stop: an Event that
    closes it when set."""
    body = dict(body, stream=True, stream_options={"include_usage": True})
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        r.read()
        c.close()
        return r.status, None, None, 0
    first, n_events, tokens = None, 0, 0
    while True:
        line = r.readline()
        if not line:
            break
        if not line.startswith(b"data: "):
            continue
        data = line[6:].strip()
        if data == b"[DONE]":
            break
        j = json.loads(data)
        if j.get("usage"):
            tokens = j["usage"]["completion_tokens"]
        elif j["choices"] and j["choices"][0]["text"]:
            if first is None:
                first = time.perf_counter() - t0
            n_events += 1
            if (cancel_after is not None and n_events >= cancel_after) or (stop and stop.is_set()):
                c.sock.close()  # the client goes away mid-stream
                return 200, first, time.perf_counter() - t0, -1
    c.close()
    return 200, first, time.perf_counter() - t0, tokens


def metrics(port):
    _, data = request(port, "/metrics")
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"^bitnet_(\w+) ([-0-9.e+]+)$", data.decode(), re.M)}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def prompt_of(port, n_tokens, seed):
    """A text prompt of exactly n_tokens tokens (BOS included), checked with /tokenize."""
    rng = random.Random(seed)
    words = "the of and to in a is that for it as was with be by on not he this are".split()
    text = " ".join(rng.choice(words) for _ in range(n_tokens))
    while True:
        _, data = request(port, "/tokenize", {"content": text, "add_special": True})
        n = len(json.loads(data)["tokens"])
        if n == n_tokens:
            return text
        text = text.rsplit(" ", 1)[0] if n > n_tokens else text + " " + rng.choice(words)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bitnet", default="build/tools/bitnet")
    ap.add_argument("-m", "--model", default="models/synth-2b4t-s1.gguf")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("-c", "--ctx", type=int, default=0, help="total context (default 1024 per slot)")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--only", choices=["throughput", "ttft", "soak"], action="append")
    a = ap.parse_args()
    ctx = a.ctx or 1024 * a.parallel
    cmd = [a.bitnet, "serve", "-m", a.model, "-t", str(a.threads), "--parallel", str(a.parallel),
           "-c", str(ctx), "--port", "0", "--queue", "64"]
    print("server:", " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    port = None
    for line in proc.stderr:
        sys.stderr.write(line)
        if m := re.search(r"listening on http://127\.0\.0\.1:(\d+)", line):
            port = int(m.group(1))
            break
    if port is None:
        sys.exit("bitnet serve did not start")
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    ok = True
    try:
        short = prompt_of(port, 16, 1)
        gen = {"max_tokens": a.tokens, "temperature": 0, "ignore_eos": True, "cache_prompt": False}
        stream(port, dict(gen, prompt=short))  # warm-up: pages the model in
        step_ms = None
        todo = a.only or ["throughput", "ttft", "soak"]

        if "throughput" in todo:
            ratios = []
            for rnd in range(a.rounds):
                alone = prompt_of(port, 16, 100 + rnd)
                t = time.perf_counter()
                _, _, _, n = stream(port, dict(gen, prompt=alone))
                single = n / (time.perf_counter() - t)
                results = [None] * a.parallel
                # The prompts first, so the clients start together.
                prompts = [prompt_of(port, 16, 200 + 10 * rnd + i) for i in range(a.parallel)]

                def one(i):
                    results[i] = stream(port, dict(gen, prompt=prompts[i]))

                threads = [threading.Thread(target=one, args=(i,)) for i in range(a.parallel)]
                t = time.perf_counter()
                for th in threads:
                    th.start()
                for th in threads:
                    th.join()
                agg = sum(r[3] for r in results) / (time.perf_counter() - t)
                ratios.append(agg / single)
                step_ms = 1000.0 / single
                print(f"round {rnd + 1}: 1 client {single:.2f} tok/s, {a.parallel} clients "
                      f"{agg:.2f} tok/s aggregate, ratio {agg / single:.2f}", flush=True)
            med = statistics.median(ratios)
            passed = med >= 2.5
            ok &= passed
            print(f"THROUGHPUT: median ratio {med:.2f} (target >= 2.5): {'PASS' if passed else 'FAIL'}")

        if "ttft" in todo:
            p128 = prompt_of(port, 128, 7)
            body = {"prompt": p128, "max_tokens": 2, "temperature": 0, "ignore_eos": True,
                    "cache_prompt": False}
            alone = statistics.median(stream(port, body)[1] for _ in range(3))
            if step_ms is None:
                _, first, end, n = stream(port, dict(gen, prompt=short))
                step_ms = 1000.0 * (end - first) / max(n - 1, 1)
            busy = []
            for rnd in range(3):
                done = threading.Event()  # the three stop once the measurement is done
                bg = [threading.Thread(target=stream, args=(port, dict(
                    gen, max_tokens=512, prompt=prompt_of(port, 16, 300 + 10 * rnd + i))), kwargs={"stop": done})
                    for i in range(3)]
                for th in bg:
                    th.start()
                while metrics(port).get("slots_busy", 0) < 3:
                    time.sleep(0.01)
                time.sleep(4 * step_ms / 1000.0)  # the three are streaming
                busy.append(stream(port, body)[1])
                done.set()
                for th in bg:
                    th.join()
            under = statistics.median(busy)
            limit = 1.5 * alone + 2 * step_ms / 1000.0
            passed = under <= limit
            ok &= passed
            print(f"TTFT: 128-token prompt alone {alone * 1000:.0f} ms, with 3 streaming "
                  f"{under * 1000:.0f} ms (median of 3; limit 1.5 x alone + 2 steps of "
                  f"{step_ms:.0f} ms = {limit * 1000:.0f} ms): {'PASS' if passed else 'FAIL'}")

        if "soak" in todo:
            rng = random.Random(42)
            jobs = []
            for i in range(a.requests):
                jobs.append({"prompt": prompt_of(port, rng.choice([8, 32, 64, 128]), 1000 + i),
                             "max_tokens": rng.choice([8, 16, 32, 64]),
                             "cancel": rng.random() < 0.2, "seed": i})
            lock = threading.Lock()
            status = {}
            rss = {}
            done = [0]

            def client():
                while True:
                    with lock:
                        if not jobs:
                            return
                        job = jobs.pop()
                    body = {"prompt": job["prompt"], "max_tokens": job["max_tokens"], "seed": job["seed"]}
                    try:
                        st = stream(port, body, cancel_after=2 if job["cancel"] else None)[0]
                    except Exception as e:  # a failure of the server shows here
                        st = f"error {type(e).__name__}"
                    with lock:
                        status[st] = status.get(st, 0) + 1
                        done[0] += 1
                        if done[0] == 20:
                            rss["after20"] = rss_kib(proc.pid)

            threads = [threading.Thread(target=client) for _ in range(8)]
            t = time.perf_counter()
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            elapsed = time.perf_counter() - t
            time.sleep(0.5)
            m = metrics(port)
            rss["end"] = rss_kib(proc.pid)
            failures = {k: v for k, v in status.items() if k not in (200, 503)}
            grow = rss["end"] - rss.get("after20", rss["end"])
            passed = not failures and m.get("slots_busy") == 0 and grow <= 0.02 * rss["end"] + 8192
            ok &= passed
            print(f"SOAK: {a.requests} requests from 8 clients in {elapsed:.1f} s: statuses {status}; "
                  f"slots_busy at the end {m.get('slots_busy')}; RSS after 20 "
                  f"{rss.get('after20', 0) / 1024:.0f} MiB, at the end {rss['end'] / 1024:.0f} MiB: "
                  f"{'PASS' if passed else 'FAIL'}")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    print("server exit code:", proc.returncode)
    sys.exit(0 if ok and proc.returncode == 0 else 1)


if __name__ == "__main__":
    main()
