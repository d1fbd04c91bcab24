"""Evaluation on the held-out test features.

    evaluate.py MODEL TEST METRICS

auc, accuracy, log_loss and brier (deterministic), ece (expected calibration error over
ten probability bins, deterministic) and p95_latency_ms: the 95th percentile time the model
takes to score one customer, measured (not deterministic: gated against a budget)."""
import sys
import time

import numpy as np
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from churn.io import read_features, write_metrics
from churn.registry import load

model_path, test, metrics_out = sys.argv[1:4]
bundle = load(model_path)
model = bundle["model"]
_, X, y = read_features(test)
p = model.predict_proba(X)[:, 1]


def ece(y, p, bins=10):
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(p[m].mean() - y[m].mean())
    return total


timings = []
for row in X[:200]:
    t = time.perf_counter()
    model.predict_proba(row.reshape(1, -1))
    timings.append((time.perf_counter() - t) * 1000)
metrics = {
    "rows": int(len(y)),
    "auc": round(float(roc_auc_score(y, p)), 6),
    "accuracy": round(float(((p >= 0.5) == y).mean()), 6),
    "log_loss": round(float(log_loss(y, p)), 6),
    "brier": round(float(brier_score_loss(y, p)), 6),
    "ece": round(float(ece(y, p)), 6),
    "p95_latency_ms": round(float(np.percentile(timings, 95)), 3),
}
write_metrics(metrics_out, metrics)
print(" ".join(f"{k}={v}" for k, v in metrics.items()))
