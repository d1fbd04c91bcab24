#!/usr/bin/env python3
"""Latency of `mlp watch`: from a file write to the first affected stage starting.

usage: watch_latency.py [MLP] [EDITS] [MEMORY_EDITS]

Starts `mlp watch --json` on a 20-stage pipeline in a temp dir, makes EDITS edits to one
input (waiting for each run to finish), and reports p50/p95 of write → `stage_started`
(the engine's own timestamp, debounce included). Then makes MEMORY_EDITS more edits and
compares the watcher's resident memory before and after (growth would be a leak).
"""
import json, os, subprocess, sys, tempfile, threading, time, queue

mlp = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "target", "release", "mlp")
edits = int(sys.argv[2]) if len(sys.argv) > 2 else 50
mem_edits = int(sys.argv[3]) if len(sys.argv) > 3 else 1000

d = tempfile.mkdtemp(prefix="mlp-watch-bench.")
lines = ['pipeline "watchbench"']
for i in range(20):
    lines += [f"stage s{i} {{", f'  in "src/{i}.txt"', f'  out o = "out/{i}.txt"',
              f'  run "mkdir -p out && cp src/{i}.txt ${{out.o}}"', "}"]
open(f"{d}/pipeline.mlp", "w").write("\n".join(lines) + "\n")
os.makedirs(f"{d}/src")
for i in range(20):
    open(f"{d}/src/{i}.txt", "w").write("0\n")

import atexit
p = subprocess.Popen([mlp, "watch", "--json", "-j", "2"], cwd=d, stdout=subprocess.PIPE,
                     stderr=open(f"{d}/watch.err", "w"), text=True)
atexit.register(lambda: p.poll() is None and p.kill())
events = queue.Queue()
threading.Thread(target=lambda: [events.put(json.loads(l)) for l in p.stdout if l.startswith("{")], daemon=True).start()

def wait(pred, limit=30):
    end = time.time() + limit
    while time.time() < end:
        try:
            e = events.get(timeout=0.5)
        except queue.Empty:
            continue
        if os.environ.get("DEBUG"):
            print(e, file=sys.stderr)
        if pred(e):
            return e
    raise SystemExit(f"timed out; mlp exit code: {p.poll()}")

def rss_kb():
    for l in open(f"/proc/{p.pid}/status"):
        if l.startswith("VmRSS:"):
            return int(l.split()[1])

def edit(n):
    path = f"{d}/src/{n % 20}.txt"
    t = time.time()
    open(path, "w").write(f"edit {n}\n")
    e = wait(lambda e: e.get("event") == "stage_started")
    wait(lambda e: e.get("event") == "watching")
    time.sleep(0.06)  # let a trailing debounce window pass
    while not events.empty():
        events.get()
    return e["at_ms"] - t * 1000

wait(lambda e: e.get("event") == "watching")
lat = sorted(edit(n) for n in range(edits))
p50, p95 = lat[len(lat) // 2], lat[int(len(lat) * 0.95) - 1]
before = rss_kb()
for n in range(mem_edits):
    edit(edits + n)
after = rss_kb()
p.send_signal(2)
p.wait(timeout=10)
print(f"write → first stage started over {edits} edits: p50 {p50:.0f} ms, p95 {p95:.0f} ms (debounce 50 ms included)")
print(f"watcher RSS: {before} KB after {edits} edits, {after} KB after {mem_edits} more ({(after - before):+d} KB)")
