"""Synthetic customers of a telecom, and whether they churned.

    make_data.py ROWS SEED STREAM_ROWS RAW REFERENCE STREAM
        RAW: the batch to train on; REFERENCE: another sample of the same population, the
        yardstick of the drift checks; STREAM: later requests (with their outcome), which
        the canary replays.
    make_data.py --drifted ROWS SEED OUT
        a batch from a changed population: shorter tenures, more month-to-month contracts,
        higher prices (how samples/drifted.csv was made).
"""
import os
import sys

import numpy as np

from churn.schema import write_rows

CONTRACTS = ["month-to-month", "one-year", "two-year"]
INTERNET = ["fiber", "dsl", "none"]
PAYMENT = ["electronic-check", "credit-card", "bank-transfer", "mailed-check"]


def customers(n, seed, first_id, drifted=False):
    rng = np.random.default_rng(seed)
    contract_p = [0.80, 0.13, 0.07] if drifted else [0.55, 0.25, 0.20]
    contract = rng.choice(3, size=n, p=contract_p)
    internet = rng.choice(3, size=n, p=[0.45, 0.35, 0.20])
    payment = rng.choice(4, size=n, p=[0.35, 0.25, 0.25, 0.15])
    shape, scale = (1.2, 9.0) if drifted else (2.0, 14.0)
    tenure = np.clip(np.round(rng.gamma(shape, scale, size=n) + 3 * contract), 0, 72).astype(int)
    base = np.array([80.0, 50.0, 22.0])[internet] + (18.0 if drifted else 0.0)
    monthly = np.round(np.clip(base + rng.normal(0, 12, size=n), 15, 150), 2)
    ratio = rng.uniform(0.85, 1.02, size=n)
    total = np.round(monthly * tenure * ratio, 2)
    calls = rng.poisson(0.8 + 1.0 * (internet == 0) + (0.8 if drifted else 0.0), size=n)
    senior = (rng.random(n) < 0.16).astype(int)
    logit = (
        (-2.2 if drifted else -1.2)
        + 1.4 * (contract == 0) - 1.0 * (contract == 2)
        - 0.045 * tenure
        + 0.025 * (monthly - 60)
        + 0.40 * calls
        + 0.55 * (payment == 0)
        + 0.35 * senior
        + 0.6 * ((internet == 0) & (calls >= 3))
        + 0.8 * ((monthly - total / np.maximum(tenure, 1)) > 4)
    )
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    missing = rng.random(n) < 0.002  # a few customers have no total on record
    rows = []
    for i in range(n):
        rows.append({
            "customer_id": f"C{first_id + i:07d}",
            "tenure_months": int(tenure[i]),
            "contract": CONTRACTS[contract[i]],
            "internet": INTERNET[internet[i]],
            "payment_method": PAYMENT[payment[i]],
            "monthly_charges": f"{monthly[i]:.2f}",
            "total_charges": None if missing[i] else f"{total[i]:.2f}",
            "support_calls": int(calls[i]),
            "senior": int(senior[i]),
            "churned": int(churned[i]),
        })
    return rows


def write(path, rows):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    write_rows(path, rows)
    print(f"{path}: {len(rows)} customers, churn rate {sum(r['churned'] for r in rows) / len(rows):.3f}")


def main(argv):
    if argv[0] == "--drifted":
        rows, seed, out = int(argv[1]), int(argv[2]), argv[3]
        write(out, customers(rows, seed, 9_000_000, drifted=True))
        return
    rows, seed, stream_rows = int(argv[0]), int(argv[1]), int(argv[2])
    raw, reference, stream = argv[3:6]
    write(raw, customers(rows, seed, 1_000_000))
    write(reference, customers(rows, seed + 1000, 3_000_000))
    write(stream, customers(stream_rows, seed + 2000, 5_000_000))


if __name__ == "__main__":
    main(sys.argv[1:])
