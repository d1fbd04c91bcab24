"""Monitoring: drift of the newly arrived data against the reference sample.

    monitor.py REFERENCE METRICS [BATCH.csv ...]

Batches land in incoming/ (the pipeline passes the glob `incoming/*.csv`; an unmatched
glob reaches us as the pattern itself and counts as no data). `drift` is the largest PSI
of any monitored column over all arrived rows; 0 when nothing arrived."""
import os
import sys

from churn.drift import psi_by_column
from churn.io import write_metrics
from churn.schema import MONITORED, read_rows

reference, metrics_out, *batches = sys.argv[1:]
batches = sorted(b for b in batches if os.path.isfile(b))
ref = read_rows(reference)
rows = []
for b in batches:
    rows.extend(read_rows(b))
if rows:
    by_column = psi_by_column(ref, rows, MONITORED)
    worst = max(by_column, key=by_column.get)
    drift = by_column[worst]
else:
    by_column, worst, drift = {}, "none", 0.0
write_metrics(metrics_out, {
    "batches": len(batches),
    "rows": len(rows),
    "drift": drift,
    "worst_column": worst,
    "psi_by_column": by_column,
})
if rows:
    print(f"{len(rows)} new rows in {len(batches)} batches: drift {drift:.4f} ({worst})")
else:
    print("no new data in incoming/: drift 0")
