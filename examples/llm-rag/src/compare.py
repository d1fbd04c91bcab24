"""A/B report of the prompt variants: quality and cost side by side.

    compare.py REPORT METRICS QUALITY_a.json COST_a.json [QUALITY_b.json COST_b.json ...]

(the pipeline passes globs: every metrics/quality_*.json and metrics/cost_*.json)"""
import json
import os
import sys

report_out, metrics_out, *files = sys.argv[1:]
rows = {}
for path in sorted(files):
    base = os.path.basename(path)
    if not os.path.isfile(path) or not base.endswith(".json") or "_" not in base:
        continue
    kind, variant = base[: -len(".json")].split("_", 1)
    with open(path) as f:
        rows.setdefault(variant, {})[kind] = json.load(f)
variants = sorted(v for v in rows if {"quality", "cost"} <= set(rows[v]))
table = ["| variant | accuracy | tokens | usd | answered by |", "| --- | --- | --- | --- | --- |"]
summary = {}
for v in variants:
    q, c = rows[v]["quality"], rows[v]["cost"]
    table.append(f"| {v} | {q['accuracy']:.3f} | {c['total_tokens']} | {c['usd']:.4f} | {q['models']} |")
    summary[v] = {"accuracy": q["accuracy"], "total_tokens": c["total_tokens"], "usd": c["usd"],
                  "fallback": c["fallback"]}
# Best: highest accuracy, then fewest tokens.
best = min(variants, key=lambda v: (-summary[v]["accuracy"], summary[v]["total_tokens"])) if variants else "none"
os.makedirs(os.path.dirname(report_out) or ".", exist_ok=True)
with open(report_out, "w") as f:
    f.write("# Prompt A/B\n\n" + "\n".join(table) + f"\n\nBest: **{best}** (accuracy first, then tokens).\n")
metrics = {"best": best, "variants": summary,
           "best_accuracy": summary[best]["accuracy"] if variants else 0.0}
os.makedirs(os.path.dirname(metrics_out) or ".", exist_ok=True)
with open(metrics_out, "w") as f:
    json.dump(metrics, f, indent=2, sort_keys=True)
    f.write("\n")
print("\n".join(table))
print(f"best: {best}")
