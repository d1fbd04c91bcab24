"""Reading feature tables and writing metrics."""
import csv
import json
import os

import numpy as np

from churn.features import FEATURES


def read_features(path):
    """(ids, X, y) of a feature table written by build_features.py."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        if header[1:-1] != FEATURES:
            raise SystemExit(f"{path}: its columns are not the features this code computes; rebuild it")
        ids, xs, ys = [], [], []
        for line in reader:
            ids.append(line[0])
            xs.append([float(v) for v in line[1:-1]])
            ys.append(int(line[-1]))
    return ids, np.array(xs), np.array(ys)


def write_metrics(path, metrics):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(metrics, f, indent=2, sort_keys=True)
        f.write("\n")
