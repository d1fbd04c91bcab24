"""Scoring with a trained bundle: raw rows -> features -> churn probability."""
from churn.features import FEATURES, transform


def score(bundle, rows):
    """Churn probabilities of raw rows, through the same features as training."""
    if bundle["features"] != FEATURES:
        raise ValueError("the model was trained on other features than this code computes")
    if not rows:
        return []
    return [float(p) for p in bundle["model"].predict_proba(transform(rows))[:, 1]]
