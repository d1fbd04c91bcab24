//! Every example pipeline passes `mlp check`; the quickstart runs end to end in a copy.

use std::path::PathBuf;

use crate::common::{Mlp, Workspace, names, root};

fn examples() -> Vec<PathBuf> {
    let root = root().join("examples");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("examples/")
        .filter_map(Result::ok)
        .map(|e| e.path().join("pipeline.mlp"))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

#[test]
fn every_example_passes_check() {
    let all = examples();
    assert!(!all.is_empty());
    for p in all {
        let out = Mlp::new(&["-f", p.to_str().unwrap(), "check"]).run();
        assert!(out.code() == 0, "{}: {}", p.display(), out.stderr());
    }
}

#[test]
fn quickstart_runs_and_reruns_only_what_a_param_change_touches() {
    let ws = Workspace::example("quickstart");
    let r = ws.run(&[]);
    r.assert_ok();
    assert_eq!(
        r.ran(),
        names(&["evaluate", "make_data", "publish", "split", "train"])
    );
    let eval: serde_json::Value = serde_json::from_str(&ws.read("metrics/eval.json")).unwrap();
    assert!(eval["auc"].as_f64().unwrap() > 0.6, "{eval}");
    assert!(ws.exists("registry/model.json"));
    assert!(ws.run(&[]).nothing_to_do());
    // The publish stage promoted run 1: it is the baseline.
    let runs = ws.mlp(&["runs", "--json"]).json();
    assert_eq!(runs[0]["baseline"], true, "{runs}");
    // A param change reruns what reads it; the model is close enough to pass the gates.
    let r = ws.run(&["--set", "train.epochs=50"]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["evaluate", "publish", "train"]));
    // A much worse model fails the gate against the promoted one and is not published.
    let published = ws.read("registry/model.json");
    let r = ws.run(&["--set", "train.epochs=5", "--set", "train.lr=0.01"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let reason = r.event("evaluate")["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("must not be worse than the promoted model"),
        "{reason}"
    );
    assert_eq!(r.statuses()["publish"], "skipped");
    assert_eq!(ws.read("registry/model.json"), published);
}
