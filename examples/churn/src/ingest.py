"""Ingestion: read a raw batch, enforce the schema, write the clean table and a report.

    ingest.py RAW CLEAN REPORT

Rows that break the schema (unparseable numbers, values out of range, unknown categories)
are dropped and counted; a missing total is imputed. The stage never fails on bad data:
its `check`s read the report and stop the pipeline with the reason."""
import csv
import json
import os
import sys

from churn.schema import COLUMNS, parse_value, write_rows

raw, clean, report = sys.argv[1:4]
with open(raw, newline="") as f:
    reader = csv.DictReader(f)
    header = reader.fieldnames or []
    lines = list(reader)

missing = [c for c in COLUMNS if c not in header]
unexpected = [c for c in header if c not in COLUMNS]
rows, invalid, nulls, imputed, examples = [], 0, 0, 0, []
if not missing:
    for n, line in enumerate(lines, start=2):
        try:
            row = {c: parse_value(c, line[c] or "") for c in COLUMNS}
        except ValueError as e:
            invalid += 1
            if len(examples) < 5:
                examples.append(f"line {n}: {e}")
            continue
        nulls += sum(1 for c in COLUMNS if row[c] is None)
        required_missing = [c for c in COLUMNS if row[c] is None and c != "total_charges"]
        if required_missing:
            invalid += 1
            if len(examples) < 5:
                examples.append(f"line {n}: empty {', '.join(required_missing)}")
            continue
        if row["total_charges"] is None:
            row["total_charges"] = round(row["monthly_charges"] * row["tenure_months"], 2)
            imputed += 1
        rows.append(row)

for p in (clean, report):
    os.makedirs(os.path.dirname(p) or ".", exist_ok=True)
write_rows(clean, rows)
cells = max(1, len(lines) * len(COLUMNS))
result = {
    "rows": len(lines),
    "clean_rows": len(rows),
    "missing_columns": len(missing),
    "unexpected_columns": len(unexpected),
    "invalid_rows": invalid,
    "invalid_fraction": round(invalid / max(1, len(lines)), 6),
    "null_fraction": round(nulls / cells, 6),
    "imputed_totals": imputed,
    "details": {"missing": missing, "unexpected": unexpected, "examples": examples},
}
with open(report, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
print(f"{raw}: {len(lines)} rows, {len(rows)} clean, {invalid} invalid, {imputed} totals imputed")
if missing:
    print(f"missing columns: {', '.join(missing)}", file=sys.stderr)
for e in examples:
    print(f"  {e}", file=sys.stderr)
