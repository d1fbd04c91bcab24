"""Generate a synthetic churn table: tenure, monthly charges, support calls -> churned."""
import csv
import math
import random
import sys

rows, seed, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = random.Random(seed)
with open(out, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["tenure_months", "monthly_charges", "support_calls", "churned"])
    for _ in range(rows):
        tenure = rng.randint(1, 72)
        charges = round(rng.uniform(20, 120), 2)
        calls = min(10, int(rng.expovariate(0.7)))
        z = -1.0 - 0.05 * tenure + 0.025 * charges + 0.45 * calls + rng.gauss(0, 0.8)
        churned = 1 if rng.random() < 1 / (1 + math.exp(-z)) else 0
        w.writerow([tenure, charges, calls, churned])
