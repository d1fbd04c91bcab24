#!/usr/bin/env python3
"""Time a command: wall seconds and peak resident memory, over several runs.

usage: measure.py [--runs R] [--prepare SHELL_CMD] [--rss] [--limit SECONDS] [--log FILE] -- CMD...

Each run: PREPARE (untimed, through sh), then CMD (timed, no shell in between). Prints one
line `median_s min_s max_s peak_kb`. Prints `timeout` when a run passes LIMIT seconds (its
process group is killed) and `fail CODE` on a non-zero exit; CMD's stdout is discarded, its
stderr goes to --log (default /dev/null). The wait blocks in wait4, so the figures are not
rounded up by polling. The child gets its own process group (setpgid, which keeps vfork: a
new session would make Python fork, adding ~3 ms to every run).

peak_kb (0 without --rss) comes from one more run, after the timed ones, under GNU time
(`/usr/bin/time -f %M`): the largest resident set of CMD or of any process it waited for.
It cannot come from this process's own wait4: a child of Python inherits Python's resident
set until it execs, and Linux keeps that high-water mark across exec (~14 MB).
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--prepare")
    ap.add_argument("--rss", action="store_true")
    ap.add_argument("--limit", type=float, default=600)
    ap.add_argument("--log", default=os.devnull)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        sys.exit("measure.py: no command")
    walls, peak = [], 0
    for k in range(a.runs + (1 if a.rss else 0)):
        rss_run = k == a.runs
        if rss_run:
            fd, rss_file = tempfile.mkstemp()
            os.close(fd)
            run = ["/usr/bin/time", "-q", "-f", "%M", "-o", rss_file, *cmd]
        else:
            run = cmd
        if a.prepare:
            subprocess.run(["sh", "-c", a.prepare], check=True)
        with open(a.log, "ab") as err:
            t0 = time.perf_counter()
            p = subprocess.Popen(run, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=err, process_group=0)
            killed = threading.Event()

            def kill():
                killed.set()
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

            timer = threading.Timer(a.limit, kill)
            timer.start()
            _, status, ru = os.wait4(p.pid, 0)
            wall = time.perf_counter() - t0
            timer.cancel()
            p.returncode = os.waitstatus_to_exitcode(status)  # already reaped
        if killed.is_set():
            print("timeout")
            return
        if p.returncode != 0:
            print(f"fail {p.returncode}")
            return
        if rss_run:
            with open(rss_file) as f:
                peak = int(f.read().split()[-1])
            os.unlink(rss_file)
        else:
            walls.append(wall)
    print(f"{statistics.median(walls):.4f} {min(walls):.4f} {max(walls):.4f} {peak}")


if __name__ == "__main__":
    main()
