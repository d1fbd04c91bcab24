"""Deployment against the local registry (churn/registry.py).

    deploy.py canary MODEL STREAM TRAFFIC FAULT_RATE METRICS
        Register MODEL and put it under canary (registry/canary.json), then replay the
        request stream: a TRAFFIC share of the customers (by a hash of their id, so the
        split is stable) is served by the candidate, the rest by the current version. The
        current version also scores the canary's requests in shadow, so both error rates
        are measured on the same customers. FAULT_RATE simulates a broken deployment: that
        share of the candidate's requests fail (and count as errors).
    deploy.py promote MODEL CURRENT
        Point CURRENT (registry/current) at MODEL's version: it now serves all traffic, and
        the canary slot is empty again.
    deploy.py rollback MODEL
        Take the candidate out of the canary (all traffic back to the current version) and
        mark it rejected. The pipeline runs it when evaluation, the canary or the promotion
        failed.

The registry is deployment state, outside mlp's cache: only registry/current is a
declared output (of the promotion), so that restoring an old run restores its pointer.
"""
import hashlib
import os
import sys
import time

from churn import registry
from churn.io import write_metrics
from churn.model import score
from churn.schema import read_rows


def bucket(customer_id, salt):
    h = hashlib.sha256(f"{salt}:{customer_id}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def canary(model, stream, traffic, fault_rate, metrics_out):
    traffic, fault_rate = float(traffic), float(fault_rate)
    version = registry.register(model, {"source": model})
    production = registry.current()
    candidate = registry.load_version(version)
    prod = registry.load_version(production) if production else None
    registry.write_json(registry.CANARY, {"version": version, "traffic": traffic, "production": production})
    registry.log("canary", version=version, traffic=traffic, production=production or "none")

    rows = read_rows(stream)
    canary_rows = [r for r in rows if bucket(r["customer_id"], "split") < traffic]
    served, failed, latencies = [], 0, []
    for r in canary_rows:
        t = time.perf_counter()
        try:
            if bucket(r["customer_id"], "fault") < fault_rate:
                raise RuntimeError("simulated serving fault")
            served.append((r, score(candidate, [r])[0]))
        except RuntimeError:
            failed += 1
        latencies.append((time.perf_counter() - t) * 1000)
    wrong = sum(1 for r, p in served if (p >= 0.5) != bool(r["churned"]))
    n = max(1, len(canary_rows))
    error_rate = (wrong + failed) / n
    if prod is not None:
        shadow = score(prod, canary_rows)
        prod_wrong = sum(1 for r, p in zip(canary_rows, shadow) if (p >= 0.5) != bool(r["churned"]))
    else:  # first deployment: nothing to compare with but the candidate without faults
        prod_wrong = sum(1 for r, p in zip(canary_rows, score(candidate, canary_rows))
                         if (p >= 0.5) != bool(r["churned"]))
    latencies.sort()
    metrics = {
        "requests": len(rows),
        "canary_requests": len(canary_rows),
        "failed_requests": failed,
        "error_rate": round(error_rate, 6),
        "prod_error_rate": round(prod_wrong / n, 6),
        "p95_latency_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 3) if latencies else 0.0,
        "version": version,
        "production": production or "none",
    }
    write_metrics(metrics_out, metrics)
    print(f"canary {version} on {len(canary_rows)}/{len(rows)} requests: error rate "
          f"{metrics['error_rate']:.4f} ({failed} failed) vs production "
          f"{production or '(none: first deployment)'} {metrics['prod_error_rate']:.4f}")


def promote(model, current_out):
    version = registry.register(model, {"source": model})
    before = registry.current()
    registry.write_pointer(current_out, version)
    registry.write_json(registry.CANARY, {"version": None, "traffic": 0.0, "production": version})
    registry.log("promote", version=version, previous=before or "none")


def rollback(model):
    state = registry.canary()
    production = registry.current() or "none"
    if state.get("version"):
        registry.write_json(registry.CANARY, {"version": None, "traffic": 0.0, "production": production,
                                              "rolled_back": state["version"]})
        if state["version"] != registry.current():
            registry.mark(state["version"], "rejected", "rolled back after a failed canary")
        registry.log("rollback", version=state["version"], production=production,
                     note="canary_traffic_returned_to_production")
    else:
        candidate = registry.version_of(model) if os.path.exists(model) else "none"
        registry.log("rollback", version=candidate, production=production,
                     note="rejected_before_reaching_the_canary")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"canary": canary, "promote": promote, "rollback": rollback}[cmd](*args)
