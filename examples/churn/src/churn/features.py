"""Feature engineering: the one definition used by training, evaluation, the canary and
anything else that scores a customer. A row is a dict of typed raw values (schema.py);
transform() is stateless, so a model needs nothing but these functions and its weights."""
import math

CONTRACTS = ("month-to-month", "one-year", "two-year")
INTERNET = ("fiber", "dsl", "none")
PAYMENT = ("electronic-check", "credit-card", "bank-transfer", "mailed-check")

FEATURES = (
    ["tenure_months", "log_tenure", "monthly_charges", "total_charges", "avg_charge_gap",
     "support_calls", "calls_per_year", "senior"]
    + [f"contract={c}" for c in CONTRACTS]
    + [f"internet={c}" for c in INTERNET]
    + [f"payment={c}" for c in PAYMENT]
)


def row_features(row):
    tenure = row["tenure_months"]
    monthly = row["monthly_charges"]
    total = row["total_charges"]
    if total is None:  # new customers have no bill yet
        total = monthly * tenure
    calls = row["support_calls"]
    out = [
        float(tenure),
        math.log1p(tenure),
        monthly,
        total,
        # how far this month's charge is from the customer's average: price increases churn
        monthly - total / max(tenure, 1),
        float(calls),
        calls / max(tenure / 12.0, 1.0 / 12.0),
        float(row["senior"]),
    ]
    out += [1.0 if row["contract"] == c else 0.0 for c in CONTRACTS]
    out += [1.0 if row["internet"] == c else 0.0 for c in INTERNET]
    out += [1.0 if row["payment_method"] == c else 0.0 for c in PAYMENT]
    return out


def transform(rows):
    """The feature matrix (a list of lists of floats) of some rows, in FEATURES order."""
    return [row_features(r) for r in rows]
