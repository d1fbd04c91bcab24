"""Accuracy and AUC of the model on the held-out rows."""
import json
import sys

from common import load, predict

model_path, test_csv, metrics_out = sys.argv[1:4]
w = json.load(open(model_path))["weights"]
xs, ys = load(test_csv)
scores = [predict(w, x) for x in xs]
acc = sum((s >= 0.5) == bool(y) for s, y in zip(scores, ys)) / len(ys)
pos = [s for s, y in zip(scores, ys) if y]
neg = [s for s, y in zip(scores, ys) if not y]
# AUC: the probability that a random positive scores above a random negative.
ranked = sorted((s, y) for s, y in zip(scores, ys))
rank_sum, i = 0.0, 0
while i < len(ranked):
    j = i
    while j < len(ranked) and ranked[j][0] == ranked[i][0]:
        j += 1
    avg_rank = (i + j + 1) / 2
    rank_sum += avg_rank * sum(1 for k in range(i, j) if ranked[k][1])
    i = j
auc = (rank_sum - len(pos) * (len(pos) + 1) / 2) / max(1, len(pos) * len(neg))
with open(metrics_out, "w") as f:
    json.dump({"accuracy": round(acc, 4), "auc": round(auc, 4), "rows": len(ys)}, f, indent=2)
print(f"accuracy {acc:.3f}  auc {auc:.3f}")
