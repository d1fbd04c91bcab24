"""Feature engineering: split the clean table into train and test, and compute features.

    build_features.py CLEAN TEST_FRACTION SEED TRAIN_OUT TEST_OUT

The split is a seeded shuffle; the features are churn.features.transform, the same code the
canary uses to score live requests."""
import csv
import os
import sys

import numpy as np

from churn.features import FEATURES, transform
from churn.schema import read_rows

clean, test_fraction, seed, train_out, test_out = sys.argv[1:6]
rows = read_rows(clean)
order = np.random.default_rng(int(seed)).permutation(len(rows))
n_test = int(round(len(rows) * float(test_fraction)))
test_idx, train_idx = sorted(order[:n_test]), sorted(order[n_test:])


def write(path, idx):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    part = [rows[i] for i in idx]
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["customer_id"] + FEATURES + ["churned"])
        for r, x in zip(part, transform(part)):
            w.writerow([r["customer_id"]] + [repr(round(v, 6)) for v in x] + [r["churned"]])
    print(f"{path}: {len(part)} rows x {len(FEATURES)} features")


write(train_out, train_idx)
write(test_out, test_idx)
