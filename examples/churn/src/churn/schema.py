"""The raw customers table: columns, types and allowed values."""
import csv

# name -> (kind, allowed): kind "int"/"float" with an inclusive (min, max) range,
# "cat" with the set of allowed values.
COLUMNS = {
    "customer_id": ("id", None),
    "tenure_months": ("int", (0, 120)),
    "contract": ("cat", ("month-to-month", "one-year", "two-year")),
    "internet": ("cat", ("fiber", "dsl", "none")),
    "payment_method": ("cat", ("electronic-check", "credit-card", "bank-transfer", "mailed-check")),
    "monthly_charges": ("float", (0.0, 500.0)),
    "total_charges": ("float", (0.0, 60000.0)),
    "support_calls": ("int", (0, 50)),
    "senior": ("int", (0, 1)),
    "churned": ("int", (0, 1)),
}
NUMERIC = [c for c, (k, _) in COLUMNS.items() if k in ("int", "float")]
CATEGORICAL = [c for c, (k, _) in COLUMNS.items() if k == "cat"]
# Columns whose distribution is compared with the reference (the label and id are not).
MONITORED = ["tenure_months", "monthly_charges", "total_charges", "support_calls",
             "contract", "internet", "payment_method"]


def parse_value(column, text):
    """The typed value of one cell; None when empty; ValueError when it breaks the schema."""
    kind, allowed = COLUMNS[column]
    text = text.strip()
    if text == "":
        return None
    if kind == "id":
        return text
    if kind == "cat":
        if text not in allowed:
            raise ValueError(f"{column}: {text!r} is not one of {', '.join(allowed)}")
        return text
    value = int(text) if kind == "int" else float(text)
    lo, hi = allowed
    if not lo <= value <= hi:
        raise ValueError(f"{column}: {value} outside [{lo}, {hi}]")
    return value


def read_rows(path):
    """The rows of a clean (already validated) CSV, typed."""
    with open(path, newline="") as f:
        rows = []
        for raw in csv.DictReader(f):
            row = {}
            for c, v in raw.items():
                if c in COLUMNS:
                    row[c] = parse_value(c, v)
            rows.append(row)
        return rows


def write_rows(path, rows, columns=None):
    columns = columns or list(COLUMNS)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow(["" if r.get(c) is None else r[c] for c in columns])
