#!/usr/bin/env python3
"""Latency of `mlp lsp` on a generated pipeline (bench/gen_pipeline.py).

usage: bench/lsp.py [N] [--shape chain|wide] [--runs R] [--changes C] [--mlp PATH]

Measures, over stdio with a minimal LSP client (the standard library only):
  start-up   from spawning `mlp lsp` to the first publishDiagnostics of the pipeline
             (initialize, initialized, didOpen of pipeline.mlp): median of R runs;
  didChange  from sending a didChange of the whole text to the publishDiagnostics of
             that version: median and p90 of C changes in one session, alternating an
             edit that keeps the pipeline valid (a new `retry` value) and one that breaks
             it (an unknown stage reference: one diagnostic).
Also the server's CPU time (user + system, from /proc) for each, which a busy machine
does not inflate as it does wall time. Targets: start-up <= 200 ms, didChange <= 100 ms
(wall). Exits 1 if a median misses its target.
Without --mlp, builds and uses the release binary.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


class Server:
    def __init__(self, mlp):
        self.p = subprocess.Popen([mlp, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.next = 0

    def send(self, msg):
        body = json.dumps(msg).encode()
        self.p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.p.stdin.flush()

    def recv(self):
        length = 0
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("mlp lsp hung up")
            line = line.strip()
            if not line:
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return json.loads(self.p.stdout.read(length))

    def request(self, method, params):
        self.next += 1
        self.send({"jsonrpc": "2.0", "id": self.next, "method": method, "params": params})
        while True:
            m = self.recv()
            if m.get("id") == self.next:
                return m

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def diagnostics(self, uri, version=None):
        while True:
            m = self.recv()
            if m.get("method") != "textDocument/publishDiagnostics":
                continue
            p = m["params"]
            if p["uri"] == uri and (version is None or p.get("version") == version):
                return p["diagnostics"]

    def cpu_ms(self):
        """The server's user + system CPU time so far (from /proc, 10 ms ticks)."""
        try:
            f = open(f"/proc/{self.p.pid}/stat").read().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) * 1000 / os.sysconf("SC_CLK_TCK")
        except OSError:
            return float("nan")

    def stop(self):
        self.request("shutdown", None)
        self.notify("exit", None)
        self.p.wait(timeout=10)


def open_doc(s, uri, text):
    s.request("initialize", {"processId": os.getpid(), "capabilities": {}, "rootUri": None})
    s.notify("initialized", {})
    s.notify("textDocument/didOpen",
             {"textDocument": {"uri": uri, "languageId": "mlp", "version": 1, "text": text}})
    return s.diagnostics(uri)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=10000)
    ap.add_argument("--shape", default="chain", choices=["chain", "wide"])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--changes", type=int, default=40)
    ap.add_argument("--mlp")
    a = ap.parse_args()
    mlp = a.mlp
    if not mlp:
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "mlp"], cwd=ROOT, check=True)
        target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
        mlp = str(pathlib.Path(target) / "release" / "mlp")
    work = pathlib.Path(tempfile.mkdtemp(prefix="mlp-lsp-bench-"))
    subprocess.run([sys.executable, str(ROOT / "bench" / "gen_pipeline.py"), str(a.n), a.shape, "-o", str(work)],
                   check=True, stdout=subprocess.DEVNULL)
    path = (work / "pipeline.mlp").resolve()
    uri = path.as_uri()
    text = path.read_text()
    lines = text.count("\n")
    print(f"pipeline: {a.n} stages ({a.shape}), {len(text) // 1024} KiB, {lines} lines; mlp: {mlp}")

    starts, start_cpu = [], []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        s = Server(mlp)
        d = open_doc(s, uri, text)
        starts.append((time.perf_counter() - t0) * 1000)
        start_cpu.append(s.cpu_ms())
        s.stop()
        if d:
            sys.exit(f"the generated pipeline has diagnostics: {d[:1]}")

    s = Server(mlp)
    open_doc(s, uri, text)
    cpu0 = s.cpu_ms()
    # The last stage's `run` line gets a new value, or a reference to a stage that is not there.
    anchor = text.rindex("\n}")
    changes = []
    for i in range(a.changes):
        if i % 2 == 0:
            new = text[:anchor] + f"\n  retry {1 + i % 5}" + text[anchor:]
        else:
            new = text[:anchor] + "\n  after no_such_stage" + text[anchor:]
        v = i + 2
        t0 = time.perf_counter()
        s.notify("textDocument/didChange",
                 {"textDocument": {"uri": uri, "version": v}, "contentChanges": [{"text": new}]})
        d = s.diagnostics(uri, v)
        changes.append((time.perf_counter() - t0) * 1000)
        want = 0 if i % 2 == 0 else 1
        if len(d) != want:
            sys.exit(f"change {i}: {len(d)} diagnostics, expected {want}: {d[:2]}")
    change_cpu = (s.cpu_ms() - cpu0) / a.changes
    s.stop()

    def p90(xs):
        return sorted(xs)[max(0, int(len(xs) * 0.9) - 1)]

    su, ch = statistics.median(starts), statistics.median(changes)
    print(f"start-up to first diagnostics: median {su:.0f} ms, min {min(starts):.0f}, max {max(starts):.0f} "
          f"({a.runs} runs; target <= 200 ms); server CPU median {statistics.median(start_cpu):.0f} ms")
    print(f"didChange to diagnostics:      median {ch:.0f} ms, p90 {p90(changes):.0f}, max {max(changes):.0f} "
          f"({a.changes} changes; target <= 100 ms); server CPU {change_cpu:.0f} ms per change")
    ok = su <= 200 and ch <= 100
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
