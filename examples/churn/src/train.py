"""Training: a gradient-boosted tree model on the training features.

    train.py TRAIN MODEL METRICS LEARNING_RATE MAX_ITER MAX_DEPTH L2 SEED

Every source of randomness is seeded and the pickle holds nothing time- or machine-
dependent, so the same params on the same data give a byte-identical model (mlp then cuts
off everything downstream: nothing else reruns)."""
import os
import pickle
import sys

import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from churn.features import FEATURES
from churn.io import read_features, write_metrics

train, model_out, metrics_out = sys.argv[1:4]
lr, max_iter, max_depth, l2, seed = sys.argv[4:9]
params = {
    "learning_rate": float(lr),
    "max_iter": int(max_iter),
    "max_depth": int(max_depth),
    "l2_regularization": float(l2),
    "random_state": int(seed),
}
_, X, y = read_features(train)
model = HistGradientBoostingClassifier(early_stopping=False, **params).fit(X, y)
bundle = {"model": model, "features": FEATURES, "params": params, "sklearn": sklearn.__version__}
os.makedirs(os.path.dirname(model_out) or ".", exist_ok=True)
with open(model_out + ".tmp", "wb") as f:
    pickle.dump(bundle, f, protocol=5)
os.replace(model_out + ".tmp", model_out)
train_auc = roc_auc_score(y, model.predict_proba(X)[:, 1])
write_metrics(metrics_out, {
    "rows": int(len(y)),
    "positive_rate": round(float(y.mean()), 6),
    "train_auc": round(float(train_auc), 6),
    "features": len(FEATURES),
})
print(f"trained on {len(y)} rows with {params}: train AUC {train_auc:.4f}")
