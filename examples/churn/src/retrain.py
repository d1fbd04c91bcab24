"""Retrain trigger: runs when the monitor saw drift. Writes a retraining request (for a
scheduler, or a person) with the evidence, and says what to run.

    retrain.py LIVE_METRICS REQUEST"""
import datetime
import json
import os
import sys

live, request = sys.argv[1:3]
with open(live) as f:
    m = json.load(f)
out = {
    "requested_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "reason": f"drift {m['drift']:.4f} on {m['worst_column']} over {m['rows']} new rows",
    "psi_by_column": m["psi_by_column"],
    "next_step": "label the new batches, refresh the reference sample, then `mlp run --set ingest.raw=<new table>`",
}
os.makedirs(os.path.dirname(request) or ".", exist_ok=True)
with open(request, "w") as f:
    json.dump(out, f, indent=2)
    f.write("\n")
print(f"RETRAIN REQUESTED: {out['reason']}")
