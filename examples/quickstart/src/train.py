"""Logistic regression by batch gradient descent (standard library only).

Params arrive as environment variables set by mlp (MLP_PARAM_TRAIN__LR, ...)."""
import json
import math
import os
import sys

from common import load, predict

train_csv, model_out, metrics_out = sys.argv[1:4]
lr = float(os.environ["MLP_PARAM_TRAIN__LR"])
epochs = int(os.environ["MLP_PARAM_TRAIN__EPOCHS"])
l2 = float(os.environ["MLP_PARAM_TRAIN__L2"])

xs, ys = load(train_csv)
w = [0.0] * len(xs[0])
loss = 0.0
for _ in range(epochs):
    grad = [0.0] * len(w)
    loss = 0.0
    for x, y in zip(xs, ys):
        p = predict(w, x)
        loss -= y * math.log(max(p, 1e-12)) + (1 - y) * math.log(max(1 - p, 1e-12))
        for j, xj in enumerate(x):
            grad[j] += (p - y) * xj
    w = [wj - lr * (gj / len(xs) + l2 * wj) for wj, gj in zip(w, grad)]
with open(model_out, "w") as f:
    json.dump({"weights": w}, f, indent=2)
with open(metrics_out, "w") as f:
    json.dump({"loss": round(loss / len(xs), 6), "rows": len(xs)}, f, indent=2)
print(f"trained on {len(xs)} rows: loss {loss / len(xs):.4f}")
