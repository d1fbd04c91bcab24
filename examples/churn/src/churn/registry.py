"""A local model registry: a directory of immutable, content-addressed versions and
pointer files.

    registry/versions/<version>/model.pkl   the model, as trained
    registry/versions/<version>/meta.json   where it came from and its metrics
    registry/current                        the version serving all traffic
    registry/canary.json                    the version under canary, and its traffic share
    registry/history.log                    one line per deployment event
"""
import datetime
import hashlib
import json
import os
import pickle
import shutil

ROOT = "registry"
CURRENT = os.path.join(ROOT, "current")
CANARY = os.path.join(ROOT, "canary.json")


def version_of(model_path):
    with open(model_path, "rb") as f:
        return "v-" + hashlib.sha256(f.read()).hexdigest()[:12]


def register(model_path, meta=None):
    """Put a model in the registry (idempotent); its version."""
    version = version_of(model_path)
    d = os.path.join(ROOT, "versions", version)
    if not os.path.exists(os.path.join(d, "model.pkl")):
        os.makedirs(d, exist_ok=True)
        shutil.copyfile(model_path, os.path.join(d, "model.pkl.tmp"))
        os.replace(os.path.join(d, "model.pkl.tmp"), os.path.join(d, "model.pkl"))
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta or {}, f, indent=2, sort_keys=True)
    return version


def current():
    """The version serving production traffic, or None before the first promotion.

    registry/current is the promote stage's declared output, and mlp removes a stage's
    outputs before its command runs: while promoting, the registry's history (the last
    `promote` it logged) still says what was serving."""
    try:
        with open(CURRENT) as f:
            return f.read().strip() or None
    except FileNotFoundError:
        pass
    try:
        with open(os.path.join(ROOT, "history.log")) as f:
            promoted = [l.split() for l in f if l.split()[1:2] == ["promote"]]
    except FileNotFoundError:
        return None
    for field in reversed(promoted[-1][2:]) if promoted else []:
        if field.startswith("version="):
            return field.split("=", 1)[1]
    return None


def canary():
    try:
        with open(CANARY) as f:
            return json.load(f)
    except FileNotFoundError:
        return {"version": None, "traffic": 0.0}


def write_json(path, value):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(path + ".tmp", path)


def write_pointer(path, version):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(version + "\n")
    os.replace(path + ".tmp", path)


def mark(version, status, reason):
    d = os.path.join(ROOT, "versions", version)
    if os.path.isdir(d):
        with open(os.path.join(d, status.upper()), "w") as f:
            f.write(reason + "\n")


def log(event, **fields):
    os.makedirs(ROOT, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = " ".join([stamp, event] + [f"{k}={v}" for k, v in sorted(fields.items())])
    with open(os.path.join(ROOT, "history.log"), "a") as f:
        f.write(line + "\n")
    print(line)


def load(path):
    with open(path, "rb") as f:
        return pickle.load(f)


def load_version(version):
    return load(os.path.join(ROOT, "versions", version, "model.pkl"))
