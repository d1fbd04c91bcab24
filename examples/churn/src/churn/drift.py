"""Population stability index (PSI) of a sample against a reference sample.

PSI = sum over bins of (a - e) * ln(a / e), with e and a the reference's and the sample's
share of each bin. Numeric columns use the reference's deciles as bins, categorical
columns their values. Rule of thumb: < 0.1 stable, 0.1-0.2 moderate, > 0.2 drifted."""
import bisect
import math

from churn.schema import CATEGORICAL

EPS = 1e-4


def _psi(expected, actual):
    total = 0.0
    for e, a in zip(expected, actual):
        e, a = max(e, EPS), max(a, EPS)
        total += (a - e) * math.log(a / e)
    return total


def _shares(counts, n):
    return [c / n for c in counts] if n else [0.0] * len(counts)


def psi_numeric(reference, sample, bins=10):
    ref = sorted(v for v in reference if v is not None)
    cur = [v for v in sample if v is not None]
    if not ref or not cur:
        return 0.0
    edges = sorted({ref[min(len(ref) - 1, (len(ref) * i) // bins)] for i in range(1, bins)})

    def hist(values):
        counts = [0] * (len(edges) + 1)
        for v in values:
            counts[bisect.bisect_right(edges, v)] += 1
        return _shares(counts, len(values))

    return _psi(hist(ref), hist(cur))


def psi_categorical(reference, sample):
    cats = sorted({v for v in reference if v is not None} | {v for v in sample if v is not None})
    ref = [v for v in reference if v is not None]
    cur = [v for v in sample if v is not None]
    if not ref or not cur:
        return 0.0
    e = _shares([ref.count(c) for c in cats], len(ref))
    a = _shares([cur.count(c) for c in cats], len(cur))
    return _psi(e, a)


def psi_by_column(reference_rows, rows, columns):
    out = {}
    for c in columns:
        ref = [r.get(c) for r in reference_rows]
        cur = [r.get(c) for r in rows]
        f = psi_categorical if c in CATEGORICAL else psi_numeric
        out[c] = round(f(ref, cur), 6)
    return out
