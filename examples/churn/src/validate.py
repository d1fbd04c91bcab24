"""Distribution checks: the clean batch against the reference sample.

    validate.py CLEAN REFERENCE REPORT

Writes the PSI of every monitored column (the `psi` metric is the largest), the column
that drifted most, and the label rate. The pipeline's `check`s decide what is too much."""
import json
import os
import sys

from churn.drift import psi_by_column
from churn.schema import MONITORED, read_rows

clean, reference, report = sys.argv[1:4]
rows = read_rows(clean)
ref = read_rows(reference)
by_column = psi_by_column(ref, rows, MONITORED)
worst = max(by_column, key=by_column.get)
churn_rate = sum(r["churned"] for r in rows) / max(1, len(rows))
result = {
    "rows": len(rows),
    "psi": by_column[worst],
    "worst_column": worst,
    "psi_by_column": by_column,
    "churn_rate": round(churn_rate, 6),
}
os.makedirs(os.path.dirname(report) or ".", exist_ok=True)
with open(report, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
print(f"{clean} against {reference}: largest PSI {by_column[worst]:.4f} ({worst}); churn rate {churn_rate:.3f}")
for c, v in sorted(by_column.items(), key=lambda kv: -kv[1]):
    flag = "  DRIFTED" if v >= 0.2 else ("  moderate" if v >= 0.1 else "")
    print(f"  psi {c:16s} {v:.4f}{flag}")
