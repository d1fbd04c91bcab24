#!/usr/bin/env python3
"""Write one benchmark pipeline for one engine.

usage: gen.py ENGINE SHAPE N DIR

ENGINE  make | ninja | snakemake | dvc | mlp
SHAPE   chain  stage i copies the output of stage i-1 (stage 0 copies src/input.txt)
        wide   N independent stages copy src/input.txt; a final stage `all` reads all N

Every stage is `cat IN > OUT && echo i >> OUT` (the final stage of `wide` counts its
inputs with `ls out | ... | wc -l`): a real process doing almost nothing, so the timings
are the engine's overhead. Outputs go to out/<i>.txt (the final stage of
`wide` writes out/all.txt). DIR is wiped and rewritten.
"""
import os
import shutil
import subprocess
import sys


def plan(shape, n):
    """[(name, [input paths], output path, shell command)] in dependency order."""
    st = []
    if shape == "chain":
        prev = "src/input.txt"
        for i in range(n):
            out = f"out/{i}.txt"
            st.append((f"s{i}", [prev], out, f"cat {prev} > {out} && echo {i} >> {out}"))
            prev = out
    elif shape == "wide":
        for i in range(n):
            out = f"out/{i}.txt"
            st.append((f"s{i}", ["src/input.txt"], out,
                       f"cat src/input.txt > {out} && echo {i} >> {out}"))
        ins = [o for _, _, o, _ in st]
        # Issue 12's final stage: count the outputs through a pipe. A glob on the command
        # line (`cat out/[0-9]*.txt`) fails with "Argument list too long" at 100,000
        # stages, so every rerun reran it. `grep -v` drops out/all.txt itself, which the
        # redirection may create before `ls` reads the directory (make and ninja also
        # leave the previous one there), so the count is the same every time.
        st.append(("all", ins, "out/all.txt",
                   "ls out | grep -v '^all' | wc -l > out/all.txt && echo all >> out/all.txt"))
    else:
        sys.exit(f"gen.py: unknown shape {shape!r} (chain | wide)")
    return st


def w_make(st, d):
    lines = [".PHONY: default", f"default: {st[-1][2]}", ""]
    for _, ins, out, cmd in st:
        lines += [f"{out}: {' '.join(ins)}", f"\t@{cmd}", ""]
    write(d, "Makefile", lines)


def w_ninja(st, d):
    lines = ["rule sh", "  command = $cmd", "  description = $out", ""]
    for _, ins, out, cmd in st:
        lines += [f"build {out}: sh {' '.join(ins)}", f"  cmd = {cmd}", ""]
    lines.append(f"default {st[-1][2]}")
    write(d, "build.ninja", lines)


def w_snakemake(st, d):
    lines = ["rule target:", f"    input: {st[-1][2]!r}", ""]
    for name, ins, out, cmd in st:
        lines += [f"rule {name}:",
                  "    input: " + ", ".join(repr(i) for i in ins),
                  f"    output: {out!r}",
                  f"    shell: {cmd!r}", ""]
    write(d, "Snakefile", lines)


def w_dvc(st, d):
    lines = ["stages:"]
    for name, ins, out, cmd in st:
        lines += [f"  {name}:", f"    cmd: {cmd}", "    deps:"]
        lines += [f"    - {i}" for i in ins]
        lines += ["    outs:", f"    - {out}"]
    write(d, "dvc.yaml", lines)
    quiet = dict(cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    subprocess.run(["git", "init", "-q"], **quiet)
    subprocess.run(["dvc", "init", "-q"], **quiet)
    subprocess.run(["dvc", "config", "core.analytics", "false"], **quiet)
    subprocess.run(["dvc", "config", "core.autostage", "false"], **quiet)


def w_mlp(st, d):
    producer = {out: name for name, _, out, _ in st}
    lines = ['pipeline "bench"', ""]
    for name, ins, out, cmd in st:
        lines.append(f"stage {name} {{")
        for i in ins:  # one `in` item per input: another stage's output by reference
            lines.append(f"  in {producer[i]}.o" if i in producer else f'  in "{i}"')
        lines.append(f'  out o = "{out}"')
        lines.append(f'  run "{cmd}"')
        lines += ["}", ""]
    write(d, "pipeline.mlp", lines)


WRITERS = {"make": w_make, "ninja": w_ninja, "snakemake": w_snakemake, "dvc": w_dvc, "mlp": w_mlp}


def write(d, name, lines):
    with open(os.path.join(d, name), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    engine, shape, n, d = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    if engine not in WRITERS:
        sys.exit(f"gen.py: unknown engine {engine!r} ({' | '.join(WRITERS)})")
    if n < 1:
        sys.exit("gen.py: N must be at least 1")
    st = plan(shape, n)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "src"))
    os.makedirs(os.path.join(d, "out"))
    with open(os.path.join(d, "src", "input.txt"), "w") as f:
        f.write("seed\n")
    WRITERS[engine](st, d)


if __name__ == "__main__":
    main()
