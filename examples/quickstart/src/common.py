"""Shared by training and evaluation: the same features on both sides."""
import csv
import math


def load(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    xs = [features(r) for r in rows]
    ys = [int(r["churned"]) for r in rows]
    return xs, ys


def features(r):
    return [
        1.0,
        float(r["tenure_months"]) / 72.0,
        float(r["monthly_charges"]) / 120.0,
        float(r["support_calls"]) / 10.0,
    ]


def predict(w, x):
    z = sum(wi * xi for wi, xi in zip(w, x))
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
