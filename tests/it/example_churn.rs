//! examples/churn end to end, on the real binary, in a copy of the example: a virtualenv
//! with scikit-learn from PyPI, data checks that halt a drifted batch, gates against the
//! promoted baseline with automatic rollback, a canary, drift monitoring, the run history.
//!
//! One test function runs the whole story in order, so the virtualenv (the slow part: a
//! pip install) is built once. Without PyPI the test is skipped with the reason, except
//! under `CI=true`, where that is a failure.

use std::time::Instant;

use crate::common::{Run, Workspace, names, skip_or_fail};
use serde_json::Value;

fn reason(r: &Run, stage: &str) -> String {
    r.event(stage)["reason"].as_str().unwrap_or("").to_string()
}

fn timed(label: &str, start: Instant) {
    eprintln!(
        "churn: {label} after {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

/// The last line of the registry's history.
fn last_event(ws: &Workspace) -> String {
    ws.read("registry/history.log")
        .lines()
        .last()
        .unwrap_or("")
        .to_string()
}

const PIPELINE: [&str; 10] = [
    "canary",
    "evaluate",
    "features",
    "generate",
    "ingest",
    "monitor",
    "promote_model",
    "setup",
    "train",
    "validate",
];

#[test]
fn churn_pipeline_from_raw_data_to_a_promoted_model() {
    let start = Instant::now();
    let venv_ok = std::process::Command::new("python3")
        .args(["-c", "import venv, ensurepip"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !venv_ok {
        skip_or_fail("python3 with the venv and ensurepip modules is not available");
        return;
    }
    let ws = Workspace::example("churn");

    // 1. Everything runs: the venv, the data, the checks, the model, the gates (no baseline
    //    yet: they pass and say so), the canary, the promotion; no rollback, no retrain.
    let r = ws.run(&[]);
    timed("first run", start);
    if r.statuses().get("setup").map(String::as_str) == Some("failed") {
        let log = std::fs::read_dir(ws.path().join(".mlp/logs"))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|d| std::fs::read_to_string(d.path().join("setup.log")).ok())
            .collect::<String>();
        skip_or_fail(&format!(
            "the setup stage could not pip-install requirements.txt (is PyPI reachable?): {}\n{log}",
            reason(&r, "setup")
        ));
        return;
    }
    r.assert_ok();
    assert_eq!(r.ran(), names(&PIPELINE), "{:?}", r.statuses());
    assert_eq!(r.statuses()["rollback"], "skipped");
    assert_eq!(r.statuses()["retrain"], "skipped");
    assert!(
        r.event("evaluate")["notes"]
            .to_string()
            .contains("no baseline yet"),
        "{}",
        r.event("evaluate")
    );
    let eval: Value = serde_json::from_str(&ws.read("metrics/eval.json")).unwrap();
    let auc = eval["auc"].as_f64().unwrap();
    assert!(auc > 0.78, "{eval}");
    let current = ws.read("registry/current");
    assert!(current.starts_with("v-"), "{current}");
    assert!(ws.exists(&format!("registry/versions/{}/model.pkl", current.trim())));
    assert!(last_event(&ws).contains(" promote "), "{}", last_event(&ws));
    let runs = ws.mlp(&["runs", "--json"]).success().json();
    assert_eq!(
        runs[0]["baseline"], true,
        "promote_model made run 1 the baseline"
    );

    // 2. Nothing changed: nothing to do.
    assert!(ws.run(&[]).nothing_to_do());
    timed("no-op", start);

    // 3. Training is reproducible: retraining writes a byte-identical model, so nothing
    //    downstream reruns (early cutoff).
    let model = std::fs::read(ws.path().join("models/model.pkl")).unwrap();
    let r = ws.run(&["--force", "train"]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["train"]), "{:?}", r.statuses());
    assert_eq!(
        std::fs::read(ws.path().join("models/model.pkl")).unwrap(),
        model
    );
    timed("reproducible retrain", start);

    // 4. A drifted batch: the PSI check halts the run (exit 3) with the expression, the
    //    values and the message; nothing downstream of validation runs.
    let r = ws.run(&["--set", "ingest.raw=samples/drifted.csv"]);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.ran(), names(&["ingest"]), "{:?}", r.statuses());
    assert_eq!(r.statuses()["validate"], "failed");
    let why = reason(&r, "validate");
    assert!(
        why.starts_with("check failed: report.psi < params.validate.max_psi")
            && why.contains("input distribution drifted from the reference data"),
        "{why}"
    );
    for s in [
        "features",
        "train",
        "evaluate",
        "canary",
        "promote_model",
        "rollback",
    ] {
        assert_eq!(r.statuses()[s], "skipped", "{s}: {:?}", r.statuses());
    }
    let quality: Value = serde_json::from_str(&ws.read("reports/data_quality.json")).unwrap();
    assert!(quality["psi"].as_f64().unwrap() > 0.2, "{quality}");
    assert_eq!(ws.read("registry/current"), current);
    timed("drifted batch", start);

    // 5. A worse model (far fewer boosting rounds): the AUC gate against the promoted
    //    baseline fails, the canary and the promotion do not run, the rollback handler
    //    does, production is untouched.
    let r = ws.run(&["--set", "train.max_iter=5"]);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    let why = reason(&r, "evaluate");
    assert!(
        why.starts_with("gate failed: eval.auc >= baseline.eval.auc - params.eval.auc_tolerance")
            && why.contains("AUC below the production model's"),
        "{why}"
    );
    assert_eq!(r.statuses()["canary"], "skipped");
    assert_eq!(r.statuses()["promote_model"], "skipped");
    assert_eq!(r.statuses()["rollback"], "ran", "{:?}", r.statuses());
    assert!(
        last_event(&ws).contains("rollback") && last_event(&ws).contains("rejected_before"),
        "{}",
        last_event(&ws)
    );
    assert_eq!(ws.read("registry/current"), current);
    let worse_run = ws.mlp(&["runs", "--json", "--limit", "1"]).success().json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    timed("worse model", start);

    // 6. A broken deployment (simulated serving faults): the canary's error-rate gate fails,
    //    the rollback empties the canary slot, production is untouched.
    let r = ws.run(&["--set", "canary.fault_rate=0.3"]);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    let why = reason(&r, "canary");
    assert!(
        why.starts_with("gate failed: canary.error_rate <= canary.prod_error_rate"),
        "{why}"
    );
    assert_eq!(r.statuses()["rollback"], "ran", "{:?}", r.statuses());
    assert_eq!(r.statuses()["promote_model"], "skipped");
    let slot: Value = serde_json::from_str(&ws.read("registry/canary.json")).unwrap();
    assert_eq!(slot["version"], Value::Null, "{slot}");
    assert_eq!(slot["rolled_back"].as_str(), Some(current.trim()), "{slot}");
    assert_eq!(ws.read("registry/current"), current);
    timed("canary fault", start);

    // 7. A better model (stumps, more rounds: better AUC, calibration and Brier score)
    //    passes every gate, goes through the canary and is promoted: the registry points
    //    at it and the run is the new baseline.
    let better = ["--set", "train.max_depth=1", "--set", "train.max_iter=120"];
    let r = ws.run(&better);
    r.assert_ok();
    assert!(
        r.ran().contains(&"promote_model".to_string()),
        "{:?}",
        r.statuses()
    );
    let promoted = ws.read("registry/current");
    assert_ne!(promoted, current);
    let better_eval: Value = serde_json::from_str(&ws.read("metrics/eval.json")).unwrap();
    assert!(better_eval["auc"].as_f64().unwrap() > auc, "{better_eval}");
    assert!(better_eval["ece"].as_f64().unwrap() < eval["ece"].as_f64().unwrap());
    let runs = ws.mlp(&["runs", "--json", "--limit", "1"]).success().json();
    assert_eq!(runs[0]["baseline"], true, "{runs}");
    timed("better model", start);

    // 8. Monitoring: a drifted batch arrives in incoming/: the monitor's drift is above
    //    the threshold and the retrain trigger runs.
    std::fs::create_dir_all(ws.path().join("incoming")).unwrap();
    std::fs::copy(
        ws.path().join("samples/drifted.csv"),
        ws.path().join("incoming/batch-001.csv"),
    )
    .unwrap();
    let r = ws.run(&better);
    r.assert_ok();
    assert_eq!(
        r.ran(),
        names(&["monitor", "retrain"]),
        "{:?}",
        r.statuses()
    );
    let live: Value = serde_json::from_str(&ws.read("metrics/live.json")).unwrap();
    assert!(live["drift"].as_f64().unwrap() > 0.2, "{live}");
    let request: Value = serde_json::from_str(&ws.read("triggers/retrain.json")).unwrap();
    assert!(
        request["reason"].as_str().unwrap().contains("drift"),
        "{request}"
    );
    timed("monitoring", start);

    // 9. The history: every run with its outcome and overrides; diff names what changed.
    let runs = ws.mlp(&["runs", "--json"]).success().json();
    let runs = runs.as_array().unwrap();
    // full, forced retrain, drifted, worse, canary fault, better, monitoring (a no-op run
    // leaves no record)
    assert_eq!(runs.len(), 7, "{runs:?}");
    let oks: Vec<bool> = runs.iter().rev().map(|r| r["ok"] == true).collect();
    assert_eq!(oks, [true, true, false, false, false, true, true]);
    let text = ws.mlp(&["runs"]).stdout().to_string();
    assert!(text.contains("FAILED"), "{text}");
    let d = ws
        .mlp(&["diff", "1", &worse_run, "--json"])
        .success()
        .json();
    let rows = d["rows"].as_array().unwrap();
    let row = |key: &str| {
        rows.iter()
            .find(|r| r["key"] == key)
            .unwrap_or_else(|| panic!("no {key} in {d}"))
    };
    assert_eq!(row("params.train.max_iter")["b"], 5);
    assert!(row("metrics.evaluate.eval.auc")["delta"].as_f64().unwrap() < -0.01);
    let out = ws.mlp(&["diff", "1", &worse_run]).success();
    let text = out.stdout();
    assert!(text.contains("metrics.evaluate.eval.auc"), "{text}");
    timed("done", start);
}
