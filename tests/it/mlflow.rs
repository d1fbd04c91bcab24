//! Runs into a real MLflow tracking server (`mlflow server`, started by `.ci/run`, its URI in
//! `MLP_MLFLOW_URI`): after `mlp run` and with `mlp runs --export mlflow`, checked through
//! MLflow's own REST API: params, metrics, tags, artifacts, idempotence, a server that is
//! down and the catch-up export, and that no credential is written anywhere.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::common::{Output, Workspace, skip_or_fail};

/// A token MLflow's client would send; mlp must never write it down.
const TOKEN: &str = "mlp-test-token-3f9c1e";

/// The server's URI, or `None` after saying why there is none.
fn server() -> Option<String> {
    let Ok(uri) = std::env::var("MLP_MLFLOW_URI") else {
        skip_or_fail("MLP_MLFLOW_URI is not set (`.ci/run` starts `mlflow server` and sets it)");
        return None;
    };
    match agent().get(format!("{uri}/health")).call() {
        Ok(r) if r.status().is_success() => Some(uri),
        Ok(r) => {
            skip_or_fail(&format!(
                "MLflow at {uri} answers {} to /health",
                r.status()
            ));
            None
        }
        Err(e) => {
            skip_or_fail(&format!("MLflow at {uri} is not reachable: {e}"));
            None
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into()
}

fn api(uri: &str, endpoint: &str, body: Value) -> Value {
    let mut r = agent()
        .post(format!("{uri}/api/2.0/mlflow/{endpoint}"))
        .header("Content-Type", "application/json")
        .send(body.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{endpoint}: {e}"));
    let text = r.body_mut().read_to_string().expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{endpoint}: {e}: {text}"))
}

/// A fresh experiment name, so that test runs never see each other's runs.
fn experiment(label: &str) -> String {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("mlp-test-{label}-{}-{n}", std::process::id())
}

/// The MLflow runs of an experiment, by `mlp.run_id`.
fn runs_of(uri: &str, experiment: &str) -> Vec<Value> {
    let mut r = agent()
        .get(format!("{uri}/api/2.0/mlflow/experiments/get-by-name"))
        .query("experiment_name", experiment)
        .call()
        .expect("get-by-name");
    let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let Some(id) = v["experiment"]["experiment_id"].as_str() else {
        return Vec::new();
    };
    let v = api(
        uri,
        "runs/search",
        json!({"experiment_ids": [id], "max_results": 1000}),
    );
    let mut runs: Vec<Value> = v["runs"].as_array().cloned().unwrap_or_default();
    runs.sort_by_key(|r| tag(r, "mlp.run_id").parse::<u64>().unwrap_or(0));
    runs
}

fn tag(run: &Value, key: &str) -> String {
    entry(run, "tags", key).as_str().unwrap_or("").to_string()
}

fn param(run: &Value, key: &str) -> String {
    entry(run, "params", key).as_str().unwrap_or("").to_string()
}

fn metric(run: &Value, key: &str) -> f64 {
    entry(run, "metrics", key)
        .as_f64()
        .unwrap_or_else(|| panic!("no metric {key}"))
}

fn entry(run: &Value, kind: &str, key: &str) -> Value {
    run["data"][kind]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["key"] == key)
        .map(|e| e["value"].clone())
        .unwrap_or(Value::Null)
}

/// An artifact's bytes, through the server's artifact proxy.
fn artifact(uri: &str, run: &Value, path: &str) -> Option<String> {
    let root = run["info"]["artifact_uri"].as_str()?;
    let root = root.strip_prefix("mlflow-artifacts:/")?;
    let mut r = agent()
        .get(format!(
            "{uri}/api/2.0/mlflow-artifacts/artifacts/{root}/{path}"
        ))
        .call()
        .ok()?;
    r.status()
        .is_success()
        .then(|| r.body_mut().read_to_string().ok())
        .flatten()
}

/// `mlp ARGS` in `ws` against `uri` (with a token in the environment).
fn mlp(ws: &Workspace, uri: &str, exp: &str, args: &[&str]) -> Output {
    ws.command(args)
        .env("MLFLOW_TRACKING_URI", uri)
        .env("MLFLOW_EXPERIMENT_NAME", exp)
        .env("MLFLOW_TRACKING_TOKEN", TOKEN)
        .run()
}

/// Every file mlp wrote in the workspace (store, logs, records, snapshot) and everything it
/// printed: none holds the token.
fn assert_no_secret(ws: &Workspace, printed: &[&Output]) {
    for o in printed {
        assert!(!o.stdout().contains(TOKEN) && !o.stderr().contains(TOKEN));
    }
    fn walk(dir: &Path) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                let found = bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes());
                assert!(!found, "{} holds the tracking token", p.display());
            }
        }
    }
    walk(ws.path());
}

/// The run record as `mlp show --json` prints it.
fn show(ws: &Workspace, run: &str) -> Value {
    ws.mlp(&["show", run, "--json"]).success().json()
}

#[test]
fn quickstart_runs_in_mlflow_with_params_metrics_tags_and_artifacts() {
    let Some(uri) = server() else { return };
    let ws = Workspace::example("quickstart");
    let exp = experiment("quickstart");
    let first = mlp(&ws, &uri, &exp, &["run"]).success();
    assert!(!first.stderr().contains("warning"), "{}", first.stderr());
    let second = mlp(&ws, &uri, &exp, &["run", "--set", "train.lr=0.3"]).success();

    let runs = runs_of(&uri, &exp);
    assert_eq!(runs.len(), 2, "one MLflow run per mlp run: {runs:#?}");
    for (run, id) in runs.iter().zip(["1", "2"]) {
        let rec = show(&ws, id);
        assert_eq!(tag(run, "mlp.run_id"), id);
        assert_eq!(tag(run, "mlp.pipeline"), "quickstart");
        assert_eq!(tag(run, "mlp.outcome"), "ok");
        assert_eq!(run["info"]["status"], "FINISHED");
        assert_eq!(run["info"]["start_time"], rec["started_ms"]);
        assert_eq!(run["info"]["end_time"], rec["ended_ms"]);
        // The numbers `mlp show` has.
        let eval = &rec["stages"]["evaluate"]["metrics"]["eval"];
        assert_eq!(
            metric(run, "evaluate.eval.auc"),
            eval["auc"].as_f64().unwrap()
        );
        assert_eq!(
            metric(run, "evaluate.eval.accuracy"),
            eval["accuracy"].as_f64().unwrap()
        );
        assert_eq!(
            metric(run, "train.train.loss"),
            rec["stages"]["train"]["metrics"]["train"]["loss"]
                .as_f64()
                .unwrap()
        );
        assert_eq!(
            metric(run, "evaluate.duration_s"),
            rec["stages"]["evaluate"]["duration_ms"].as_f64().unwrap() / 1000.0
        );
        assert_eq!(
            metric(run, "evaluate.cpu_s"),
            rec["stages"]["evaluate"]["cpu_ms"].as_f64().unwrap() / 1000.0
        );
        assert!(metric(run, "evaluate.peak_rss_mb") > 0.0);
        assert_eq!(param(run, "data.rows"), "2000");
        assert_eq!(tag(run, "mlp.stage.evaluate"), "ran");
        // The metrics files, as this run wrote them.
        let body = artifact(&uri, run, "evaluate/metrics/eval.json").expect("eval.json artifact");
        let as_json: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(as_json["auc"], eval["auc"]);
        assert!(artifact(&uri, run, "train/metrics/train.json").is_some());
    }
    // Run 1: the values the stages used; run 2 names its override.
    assert_eq!(param(&runs[0], "train.lr"), "0.5");
    assert_eq!(param(&runs[1], "train.lr"), "0.3");
    assert_eq!(tag(&runs[1], "mlp.override.train.lr"), "0.3");
    assert_eq!(tag(&runs[0], "mlp.override.train.lr"), "");
    assert_eq!(tag(&runs[1], "mlp.stage.make_data"), "fresh");
    // Run 2 was compared with run 1 and promoted: it is the baseline now, run 1 no longer.
    assert_eq!(tag(&runs[1], "mlp.baseline_run"), "1");
    assert_eq!(tag(&runs[1], "mlp.baseline"), "true");
    assert_eq!(tag(&runs[0], "mlp.baseline"), "false");

    // Exporting again updates the same MLflow runs.
    let ids: Vec<Value> = runs.iter().map(|r| r["info"]["run_id"].clone()).collect();
    let again = mlp(&ws, &uri, &exp, &["runs", "--export", "mlflow", "1", "2"]).success();
    assert!(again.stdout().contains("updated"), "{}", again.stdout());
    let after = runs_of(&uri, &exp);
    assert_eq!(after.len(), 2);
    let ids_after: Vec<Value> = after.iter().map(|r| r["info"]["run_id"].clone()).collect();
    assert_eq!(ids, ids_after);
    // Not a second copy of each metric either.
    let history = agent()
        .get(format!("{uri}/api/2.0/mlflow/metrics/get-history"))
        .query("run_id", ids[0].as_str().unwrap())
        .query("metric_key", "evaluate.eval.auc")
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let history: Value = serde_json::from_str(&history).unwrap();
    assert_eq!(history["metrics"].as_array().map(Vec::len), Some(1));

    // `mlp promote 1`, exported: the baseline tag follows.
    ws.mlp(&["promote", "1"]).success();
    mlp(&ws, &uri, &exp, &["runs", "--export", "mlflow", "1"]).success();
    let after = runs_of(&uri, &exp);
    assert_eq!(tag(&after[0], "mlp.baseline"), "true");
    assert_eq!(tag(&after[1], "mlp.baseline"), "false");

    // The new baseline re-judges the gates (a run that did work: exported); then nothing
    // to do: no export, no new MLflow run.
    mlp(&ws, &uri, &exp, &["run"]).success();
    let n = runs_of(&uri, &exp).len();
    let noop = mlp(&ws, &uri, &exp, &["run"]).success();
    assert!(noop.stderr().contains("nothing to do"), "{}", noop.stderr());
    assert_eq!(runs_of(&uri, &exp).len(), n);
    assert_no_secret(&ws, &[&first, &second, &again, &noop]);
}

/// A pipeline whose gate fails: the MLflow run is FAILED and says which gate and why.
#[test]
fn a_failed_gate_is_a_failed_mlflow_run_that_says_why() {
    let Some(uri) = server() else { return };
    let exp = experiment("gate");
    let ws = Workspace::new(&format!(
        r#"pipeline "gated"
tracking mlflow {{
  uri        = "{uri}"
  experiment = "{exp}"
}}
param lr = 0.1
stage score {{
  params  lr
  metrics m = "m.json"
  run     "printf '{{\"acc\": 0.4, \"f\": {{\"x\": 2}}}}' > m.json"
  check   m.f.x == 2                 "x"
  gate    m.acc >= 0.9               "not accurate enough"
}}
"#
    ));
    // The URI and experiment come from the pipeline here.
    let out = ws.command(&["run"]).run().failure(3);
    assert!(!out.stderr().contains("not exported"), "{}", out.stderr());
    let runs = runs_of(&uri, &exp);
    assert_eq!(runs.len(), 1);
    let r = &runs[0];
    assert_eq!(r["info"]["status"], "FAILED");
    assert_eq!(tag(r, "mlp.outcome"), "failed");
    assert_eq!(tag(r, "mlp.stage.score"), "failed");
    let gates = tag(r, "mlp.failed_gates");
    assert!(
        gates.starts_with("score: ") && gates.contains("not accurate enough"),
        "{gates}"
    );
    assert_eq!(tag(r, "mlp.failed_checks"), "");
    assert_eq!(metric(r, "score.m.acc"), 0.4);
    assert_eq!(metric(r, "score.m.f.x"), 2.0);
    assert_eq!(param(r, "lr"), "0.1");
}

#[test]
fn a_server_that_is_down_never_fails_the_run_and_the_export_catches_up() {
    let Some(uri) = server() else { return };
    let exp = experiment("down");
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let ws = Workspace::new(
        "pipeline \"down\"\nstage a {\n  in \"x.txt\"\n  metrics m = \"m.json\"\n  run \"printf '{\\\"n\\\": 1}' > m.json\"\n}\n",
    );
    ws.write("x.txt", "1");
    let one = mlp(&ws, &closed, &exp, &["run"]).success();
    let warnings: Vec<&str> = one
        .stderr()
        .lines()
        .filter(|l| l.contains("warning"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", one.stderr());
    assert!(
        warnings[0].contains("run 1 not exported"),
        "{}",
        warnings[0]
    );
    assert!(warnings[0].contains("mlp runs --export mlflow"));
    ws.write("x.txt", "2");
    let two = mlp(&ws, &closed, &exp, &["run", "--json"]).success();
    let tracking: Value = two
        .stdout()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "tracking")
        .expect("a tracking event");
    assert_eq!(tracking["pending"], json!(["00000001", "00000002"]));
    assert_eq!(ws.read(".mlp/tracking/pending"), "00000001\n00000002\n");
    assert!(runs_of(&uri, &exp).is_empty());

    // The server is back: the export command sends both.
    let catch_up = mlp(&ws, &uri, &exp, &["runs", "--export", "mlflow", "2"]).success();
    assert!(!ws.exists(".mlp/tracking/pending"));
    let runs = runs_of(&uri, &exp);
    assert_eq!(runs.len(), 2, "{}", catch_up.stdout());
    assert_eq!(tag(&runs[0], "mlp.run_id"), "1");
    assert_eq!(tag(&runs[1], "mlp.run_id"), "2");

    // Down again for run 3; run 4, with the server, sends 3 and 4.
    ws.write("x.txt", "3");
    mlp(&ws, &closed, &exp, &["run"]).success();
    ws.write("x.txt", "4");
    let four = mlp(&ws, &uri, &exp, &["run"]).success();
    assert!(!four.stderr().contains("warning"), "{}", four.stderr());
    assert_eq!(runs_of(&uri, &exp).len(), 4);
    // The export command without a server: a usage error that says what to set.
    let none = ws.command(&["runs", "--export", "mlflow"]).run().failure(2);
    assert!(none.stderr().contains("MLFLOW_TRACKING_URI"));
    assert_no_secret(&ws, &[&one, &two, &catch_up, &four]);
}

/// The churn example (a virtualenv, pip, scikit-learn): the numbers MLflow shows are the
/// numbers `mlp show` has.
#[test]
fn churn_example_in_mlflow() {
    let Some(uri) = server() else { return };
    let venv_ok = std::process::Command::new("python3")
        .args(["-c", "import venv, ensurepip"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !venv_ok {
        skip_or_fail("python3 with the venv and ensurepip modules is not available");
        return;
    }
    let ws = Workspace::example("churn");
    let exp = experiment("churn");
    let out = mlp(&ws, &uri, &exp, &["run"]);
    assert!(
        out.code() == 0,
        "churn failed (is PyPI reachable?): {}",
        out.stderr()
    );
    assert!(!out.stderr().contains("not exported"), "{}", out.stderr());
    let runs = runs_of(&uri, &exp);
    assert_eq!(runs.len(), 1);
    let rec = show(&ws, "1");
    let r = &runs[0];
    for (stage, s) in rec["stages"].as_object().unwrap() {
        for (file, m) in s["metrics"].as_object().into_iter().flatten() {
            for (k, v) in m.as_object().into_iter().flatten() {
                if let Some(n) = v.as_f64() {
                    assert_eq!(
                        metric(r, &format!("{stage}.{file}.{k}")),
                        n,
                        "{stage}.{file}.{k}"
                    );
                }
            }
        }
    }
    assert!(artifact(&uri, r, "evaluate/metrics/eval.json").is_some());
    assert_eq!(tag(r, "mlp.baseline"), "true");
    assert_no_secret(&ws, &[&out]);
}

/// Needs no server: a URI mlp cannot use (MLflow's file or SQLite stores) warns on one
/// line, the run succeeds, and nothing piles up in the pending list.
#[test]
fn an_unusable_uri_warns_and_leaves_nothing_pending() {
    let ws = Workspace::new("stage a {\n  out \"o\"\n  run \"touch o\"\n}\n");
    let out = ws
        .command(&["run"])
        .env("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
        .env("MLFLOW_TRACKING_PASSWORD", TOKEN)
        .env("MLFLOW_TRACKING_USERNAME", "me")
        .run()
        .success();
    let warnings: Vec<&str> = out
        .stderr()
        .lines()
        .filter(|l| l.contains("warning"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", out.stderr());
    assert!(warnings[0].contains("http://HOST:PORT"), "{}", warnings[0]);
    assert!(!ws.exists(".mlp/tracking/pending"));
    // The export command says the same, and fails.
    let export = ws
        .command(&["runs", "--export", "mlflow"])
        .env("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
        .run()
        .failure(1);
    assert!(export.stderr().contains("http://HOST:PORT"));
    assert_no_secret(&ws, &[&out, &export]);
}
