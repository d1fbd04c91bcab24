//! ML semantics end to end: metrics, checks, gates and baselines, conditions and failure
//! handlers, `every`, retries and fallbacks, the run history, hostile params.

use std::time::Duration;

use crate::common::{Workspace, names};

/// train writes its AUC (a param), evaluate gates it against the baseline, deploy promotes,
/// rollback handles a failed gate.
const GATED: &str = r#"
pipeline "gated"
param auc = 0.80
stage train {
  params  auc
  out     model = "model.txt"
  run     "echo model-${params.auc} > ${out.model}"
}
stage evaluate {
  in      train.model
  metrics eval = "eval.json"
  params  auc
  run     "printf '{\"auc\": %s, \"latency_ms\": 12}' ${params.auc} > ${metrics.eval}"
  gate    eval.auc >= baseline.eval.auc   "must beat the production model"
  gate    eval.latency_ms <= 50
}
stage deploy {
  in      train.model
  after   evaluate
  out     live = "live.txt"
  run     "cp ${in[0]} ${out.live}"
  promote
}
stage rollback {
  when    failed(evaluate)
  run     "echo rolled back >> rollbacks.txt"
}
"#;

#[test]
fn gates_compare_with_the_promoted_baseline() {
    let ws = Workspace::new(GATED);
    // No baseline yet: the gate holds, and says why.
    let r = ws.run(&[]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["deploy", "evaluate", "train"]));
    assert_eq!(r.statuses()["rollback"], "skipped");
    let notes = r.event("evaluate")["notes"].to_string();
    assert!(notes.contains("no baseline yet"), "{notes}");
    let runs = ws.mlp(&["runs", "--json"]).success().json();
    assert_eq!(
        runs[0]["baseline"], true,
        "the promote stage made run 1 the baseline: {runs}"
    );

    // Worse than the baseline: exit 3, the expression and the values it saw; deploy does
    // not run; the rollback handler does; the run still fails.
    let r = ws.run(&["--set", "auc=0.75"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let reason = r.event("evaluate")["reason"].as_str().unwrap().to_string();
    assert_eq!(
        reason,
        "gate failed: eval.auc >= baseline.eval.auc (0.75 >= 0.8): must beat the production model"
    );
    assert_eq!(r.statuses()["deploy"], "skipped");
    assert_eq!(r.statuses()["rollback"], "ran");
    assert_eq!(ws.read("rollbacks.txt"), "rolled back\n");
    assert_eq!(ws.read("live.txt"), "model-0.8\n");
    // The human output says it too.
    let out = ws.mlp(&["run", "--set", "auc=0.75"]).failure(3);
    let text = out.stderr();
    assert!(
        text.contains("gate failed: eval.auc >= baseline.eval.auc (0.75 >= 0.8)"),
        "{text}"
    );
    assert_eq!(ws.read("rollbacks.txt"), "rolled back\nrolled back\n");

    // Better: passes, deploys, and becomes the baseline.
    let r = ws.run(&["--set", "auc=0.9"]);
    r.assert_ok();
    assert_eq!(ws.read("live.txt"), "model-0.9\n");
    let show = ws.mlp(&["show", "baseline", "--json"]).success().json();
    assert_eq!(show["stages"]["evaluate"]["metrics"]["eval"]["auc"], 0.9);
    assert_eq!(show["overrides"][0][0], "auc");
    // Now 0.85 no longer passes.
    let r = ws.run(&["--set", "auc=0.85"]);
    assert_eq!(r.code, 3);
    assert!(
        r.event("evaluate")["reason"]
            .as_str()
            .unwrap()
            .contains("(0.85 >= 0.9)")
    );

    // `mlp promote` moves the baseline back to run 1: 0.85 passes, without retraining.
    ws.mlp(&["promote", "1"]).success();
    let r = ws.run(&["--set", "auc=0.85"]);
    r.assert_ok();
    assert_eq!(r.statuses()["evaluate"], "restored", "{:?}", r.statuses());
    // A failed run cannot be promoted.
    let out = ws.mlp(&["promote", "2"]);
    assert!(out.code() != 0);
    assert!(out.stderr().contains("did not succeed"));
}

#[test]
fn diff_shows_params_and_metrics_with_deltas() {
    let ws = Workspace::new(GATED);
    ws.run(&[]).assert_ok();
    ws.run(&["--set", "auc=0.9"]).assert_ok();
    let d = ws.mlp(&["diff", "1", "2", "--json"]).success().json();
    let rows = d["rows"].as_array().unwrap();
    let auc = rows
        .iter()
        .find(|r| r["key"] == "metrics.evaluate.eval.auc")
        .unwrap();
    assert_eq!(auc["a"], 0.8);
    assert_eq!(auc["b"], 0.9);
    assert!((auc["delta"].as_f64().unwrap() - 0.1).abs() < 1e-9);
    assert!(rows.iter().any(|r| r["key"] == "params.auc"));
    assert!(
        !rows
            .iter()
            .any(|r| r["key"] == "metrics.evaluate.eval.latency_ms"),
        "equal rows are left out"
    );
    // Default: the last run against the baseline (run 2 promoted itself: then the run before).
    let out = ws.mlp(&["diff"]).success();
    let text = out.stdout();
    assert!(
        text.contains("metrics.evaluate.eval.auc") && text.contains("+0.1000"),
        "{text}"
    );
}

#[test]
fn a_failed_check_halts_everything_downstream() {
    let ws = Workspace::new(
        r#"
pipeline "drift"
stage validate {
  in      "data.csv"
  metrics report = "report.json"
  run     "python3 -c 'import json,sys; rows=open(\"data.csv\").read().split(); json.dump({\"psi\": float(rows[-1])}, open(\"report.json\",\"w\"))'"
  check   report.psi < 0.2   "input distribution drifted from the baseline"
}
stage train {
  in  "data.csv"
  after validate
  out m = "model.txt"
  run "echo trained > ${out.m}"
}
"#,
    );
    ws.write("data.csv", "psi\n0.05\n");
    ws.run(&[]).assert_ok();
    ws.write("data.csv", "psi\n0.31\n");
    let r = ws.run(&[]);
    assert_eq!(r.code, 3);
    assert_eq!(
        r.event("validate")["reason"],
        "check failed: report.psi < 0.2 (0.31 < 0.2): input distribution drifted from the baseline"
    );
    assert_eq!(r.statuses()["train"], "skipped");
    let st = ws.mlp(&["status", "--json"]).success().json();
    let v = st
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "validate")
        .unwrap()
        .clone();
    assert_eq!(v["state"], "failed", "{st}");
}

#[test]
fn when_on_metrics_runs_or_skips_and_skipped_is_not_failed() {
    let ws = Workspace::new(
        r#"
pipeline "monitor"
stage monitor {
  in      "live.txt"
  metrics live = "live.json"
  run     "printf '{\"drift\": %s}' $(cat live.txt) > ${metrics.live}"
}
stage retrain {
  when monitor.live.drift > 0.2
  out  m = "retrained.txt"
  run  "echo retrained > ${out.m}"
}
stage after_retrain {
  in retrain.m
  out o = "after.txt"
  run "cp ${in[0]} ${out.o}"
}
"#,
    );
    ws.write("live.txt", "0.1");
    let r = ws.run(&[]);
    r.assert_ok();
    assert_eq!(r.statuses()["retrain"], "skipped");
    assert_eq!(r.statuses()["after_retrain"], "skipped");
    assert!(
        r.event("retrain")["reason"]
            .as_str()
            .unwrap()
            .contains("(0.1 > 0.2)")
    );
    // Nothing changed: still a no-op (the skip is remembered).
    assert!(ws.run(&[]).nothing_to_do());
    ws.write("live.txt", "0.35");
    let r = ws.run(&[]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["after_retrain", "monitor", "retrain"]));
}

#[test]
fn every_makes_a_stage_stale_after_the_duration() {
    let ws = Workspace::new(
        r#"
pipeline "fresh"
stage index {
  out i = "index.txt"
  run "date +%s%N >> ${out.i}"
  every 2s
}
"#,
    );
    ws.run(&[]).assert_ok();
    let first = ws.read("index.txt");
    let r = ws.run(&[]);
    assert!(r.ran().is_empty(), "{:?}", r.statuses());
    std::thread::sleep(Duration::from_millis(2100));
    let r = ws.run(&[]);
    assert_eq!(r.ran(), names(&["index"]));
    // Rebuilt from scratch (old outputs are removed before a stage runs).
    assert_ne!(ws.read("index.txt"), first);
    assert_eq!(ws.read("index.txt").lines().count(), 1);
    let st = ws.mlp(&["status"]);
    assert!(st.stdout().contains("fresh"));
}

#[test]
fn retries_are_counted_and_a_fallback_is_recorded() {
    let ws = Workspace::new(
        r#"
pipeline "robust"
stage flaky {
  out o = "flaky.txt"
  retry 2
  run "echo x >> attempts.txt; [ $(wc -l < attempts.txt) -ge 3 ] && echo ok > ${out.o}"
}
stage provider {
  out o = "answer.txt"
  retry 1
  run "echo primary down >&2; exit 1"
  fallback "echo local model > ${out.o}"
}
"#,
    );
    let r = ws.run(&[]);
    r.assert_ok();
    assert_eq!(r.event("flaky")["attempts"], 3);
    assert_eq!(ws.read("answer.txt"), "local model\n");
    let notes = r.event("provider")["notes"].to_string();
    assert!(notes.contains("fallback"), "{notes}");
    let show = ws.mlp(&["show", "last", "--json"]).success().json();
    assert_eq!(show["stages"]["flaky"]["attempts"], 3);
    assert_eq!(show["stages"]["provider"]["fallback_used"], true);
    assert_eq!(show["stages"]["provider"]["attempts"], 2);
    assert!(show["stages"]["flaky"]["cpu_ms"].is_u64());
    assert!(show["stages"]["flaky"]["max_rss_kb"].as_u64().unwrap() > 0);
}

fn metrics_ws(file: &str, content: &str) -> Workspace {
    let ws = Workspace::new(&format!(
        r#"
pipeline "m"
stage s {{
  in "content.txt"
  metrics m = "{file}"
  run "cp content.txt {file}"
  check m.score > 0.5
}}
"#
    ));
    ws.write("content.txt", content);
    ws
}

#[test]
fn each_metrics_format_is_read() {
    for (file, content) in [
        ("m.json", "{\"score\": 0.9}"),
        ("m.yaml", "score: 0.9\nother: text\n"),
        ("m.yml", "score: 0.9\n"),
        ("m.csv", "epoch,score\n1,0.2\n2,0.9\n"),
    ] {
        let ws = metrics_ws(file, content);
        let r = ws.run(&[]);
        assert_eq!(r.code, 0, "{file}: {}", r.stderr);
        let show = ws.mlp(&["show", "last", "--json"]).success().json();
        assert_eq!(show["stages"]["s"]["metrics"]["m"]["score"], 0.9, "{file}");
    }
}

#[test]
fn a_malformed_metrics_file_fails_the_stage_with_file_and_line() {
    for (file, content, expect) in [
        ("m.json", "{\n\"score\": 0.9,\n}", "line 3"),
        ("m.yaml", "score: 0.9\nother: [1, 2\n", "line 3"),
        ("m.csv", "epoch,score\n1,0.2\n2\n", "line 3"),
        ("m.csv", "epoch,score\n", "no data row"),
    ] {
        let ws = metrics_ws(file, content);
        let r = ws.run(&[]);
        assert_eq!(r.code, 1, "{file}");
        let reason = r.event("s")["reason"].as_str().unwrap().to_string();
        assert!(
            reason.contains(file) && reason.contains(expect),
            "{file}: {reason}"
        );
    }
    let ws =
        Workspace::new("pipeline \"m\"\nstage s {\n  metrics m = \"m.json\"\n  run \"true\"\n}\n");
    let r = ws.run(&[]);
    assert!(r.event("s")["reason"].as_str().unwrap().contains("m.json"));
}

#[test]
fn checkout_restores_a_run_byte_for_byte_until_gc_collects_it() {
    let ws = Workspace::new(GATED);
    ws.run(&[]).assert_ok();
    let model1 = ws.read("model.txt");
    let eval1 = ws.read("eval.json");
    ws.run(&["--set", "auc=0.9"]).assert_ok();
    assert_ne!(ws.read("model.txt"), model1);
    ws.mlp(&["checkout", "1"]).success();
    assert_eq!(ws.read("model.txt"), model1);
    assert_eq!(ws.read("eval.json"), eval1);
    // After gc keeps only the last run, run 1's outputs are gone: a clear error, nothing changed.
    ws.run(&["--set", "auc=0.9"]).assert_ok();
    ws.run(&["--set", "auc=0.95"]).assert_ok();
    ws.mlp(&["gc", "--keep", "1"]).success();
    let before = ws.read("model.txt");
    let out = ws.mlp(&["checkout", "1"]);
    assert!(out.code() != 0);
    let msg = out.stderr();
    assert!(
        msg.contains("no longer has") && msg.contains("nothing was changed"),
        "{msg}"
    );
    assert_eq!(ws.read("model.txt"), before);
}

#[test]
fn hostile_param_values_arrive_verbatim_as_one_argument() {
    let hostile = [
        "; rm -rf x",
        "$(touch pwned)",
        "`touch pwned2`",
        "it's \"quoted\"",
        "line one\nline two",
        "ünïcødé ✓ 日本",
        "$HOME ${PATH} * ?",
        "-n",
        "",
    ];
    let mut yaml = String::new();
    for (i, h) in hostile.iter().enumerate() {
        yaml.push_str(&format!("v{i}: {}\n", serde_json::to_string(h).unwrap()));
    }
    let keys: Vec<String> = (0..hostile.len()).map(|i| format!("v{i}")).collect();
    let args: Vec<String> = keys.iter().map(|k| format!("${{params.{k}}}")).collect();
    let ws = Workspace::new(&format!(
        "pipeline \"h\"\nparams \"params.yaml\"\nstage s {{\n  params {}\n  out o = \"args.json\"\n  run \"python3 -c 'import json,sys; json.dump(sys.argv[1:], open(\\\"args.json\\\",\\\"w\\\"))' {}\"\n}}\n",
        keys.join(", "),
        args.join(" ")
    ));
    ws.write("params.yaml", &yaml);
    ws.write("x", "keep me");
    let r = ws.run(&[]);
    r.assert_ok();
    let got: Vec<String> = serde_json::from_str(&ws.read("args.json")).unwrap();
    assert_eq!(
        got,
        hostile.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    );
    assert!(ws.exists("x"));
    assert!(!ws.exists("pwned") && !ws.exists("pwned2"));
    // Through `--set` too, and as environment variables.
    let ws2 = Workspace::new(
        "pipeline \"h\"\nparam msg = \"hi\"\nstage s {\n  params msg\n  out o = \"o.txt\"\n  run \"printf '%s|%s' ${params.msg} \\\"$MLP_PARAM_MSG\\\" > ${out.o}\"\n}\n",
    );
    let r = ws2.run(&["--set", "msg=$(touch pwned); echo `id`"]);
    r.assert_ok();
    assert_eq!(
        ws2.read("o.txt"),
        "$(touch pwned); echo `id`|$(touch pwned); echo `id`"
    );
    assert!(!ws2.exists("pwned"));
}

#[test]
fn the_run_history_records_git_state_params_and_outcomes() {
    let ws = Workspace::new(GATED);
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .current_dir(ws.path())
            .output()
            .unwrap()
    };
    git(&["init", "-q"]);
    git(&["add", "pipeline.mlp"]);
    git(&["commit", "-qm", "init"]);
    let head = String::from_utf8_lossy(&git(&["rev-parse", "HEAD"]).stdout)
        .trim()
        .to_string();
    ws.run(&[]).assert_ok();
    let show = ws.mlp(&["show", "last", "--json"]).success().json();
    assert_eq!(show["git"]["commit"], head.as_str());
    assert_eq!(show["git"]["dirty"], false);
    assert_eq!(show["params"]["auc"], 0.8);
    assert_eq!(show["stages"]["train"]["status"], "ran");
    assert!(
        show["stages"]["train"]["outputs"][0]["digest"]
            .as_str()
            .unwrap()
            .len()
            == 64
    );
    ws.write("pipeline.mlp", GATED.replace("0.80", "0.81"));
    ws.run(&[]).assert_ok();
    let show = ws.mlp(&["show", "last", "--json"]).success().json();
    assert_eq!(show["git"]["dirty"], true);
    let runs = ws.mlp(&["runs", "--json", "--limit", "1"]).success().json();
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["id"], "2");
    let text = ws.mlp(&["runs"]).stdout().to_string();
    assert!(text.contains(&head[..8]), "{text}");
    // Unknown runs get a clear error.
    let out = ws.mlp(&["show", "99"]);
    assert!(out.stderr().contains("there is no run 99"));
}

#[test]
fn a_failed_gate_is_remembered_and_a_changed_gate_judges_again_without_running() {
    let p = r#"
pipeline "g"
stage evaluate {
  in      "score.txt"
  metrics eval = "eval.json"
  run     "echo run >> runs.log; printf '{\"auc\": %s}' $(cat score.txt) > ${metrics.eval}"
  gate    eval.auc >= 0.5
}
"#;
    let ws = Workspace::new(p);
    ws.write("score.txt", "0.7");
    ws.run(&[]).assert_ok();
    // Tightening the gate judges the same outputs again: it fails, without rerunning.
    ws.write("pipeline.mlp", p.replace(">= 0.5", ">= 0.9"));
    let r = ws.run(&[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.ran().is_empty());
    assert_eq!(
        r.event("evaluate")["reason"],
        "gate failed: eval.auc >= 0.9 (0.7 >= 0.9)"
    );
    // And it stays failed: not "nothing to do".
    let r = ws.run(&[]);
    assert_eq!(r.code, 3);
    let st = ws.mlp(&["status", "--json"]).success().json();
    assert_eq!(st[0]["state"], "failed");
    // Loosening it again passes, still without running the command.
    ws.write("pipeline.mlp", p.replace(">= 0.5", ">= 0.6"));
    let r = ws.run(&[]);
    r.assert_ok();
    assert!(r.ran().is_empty());
    assert_eq!(ws.read("runs.log"), "run\n");
}

#[test]
fn gate_messages_show_the_values_actually_compared() {
    let ws = Workspace::new(
        r#"
pipeline "g"
param floor = 0.9
stage evaluate {
  params  floor
  metrics eval = "eval.json"
  run     "echo '{\"auc\": 0.8}' > ${metrics.eval}"
  gate    eval.auc >= params.floor - 0.05
}
"#,
    );
    let r = ws.run(&[]);
    assert_eq!(r.code, 3);
    let reason = r.event("evaluate")["reason"].as_str().unwrap().to_string();
    assert!(
        reason.starts_with("gate failed: eval.auc >= params.floor - 0.05 (0.8 >= 0.85"),
        "{reason}"
    );
    assert!(reason.contains("params.floor = 0.9"), "{reason}");
}

#[test]
fn a_fallback_result_serves_one_run_and_the_command_is_tried_again() {
    let ws = Workspace::new(
        r#"
pipeline "fb"
stage provider {
  out o = "answer.txt"
  run "[ -e primary_up ] && echo primary > ${out.o} || { echo 'HTTP 503' >&2; exit 1; }"
  retry 1
  fallback "echo local > ${out.o}"
}
stage use {
  in provider.o
  out o = "used.txt"
  run "cp ${in[0]} ${out.o}"
}
"#,
    );
    let r = ws.run(&[]);
    r.assert_ok();
    assert_eq!(ws.read("used.txt"), "local\n");
    // The log keeps every attempt, then the fallback's output.
    let log = std::fs::read_to_string(ws.path().join(r.event("provider")["log"].as_str().unwrap()))
        .unwrap();
    assert_eq!(log.matches("HTTP 503").count(), 2, "{log}");
    assert!(log.contains("fallback"), "{log}");
    // The primary is back: the next run tries it (not "nothing to do").
    ws.write("primary_up", "");
    let r = ws.run(&[]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["provider", "use"]));
    assert_eq!(ws.read("used.txt"), "primary\n");
    assert!(ws.run(&[]).nothing_to_do());
}
