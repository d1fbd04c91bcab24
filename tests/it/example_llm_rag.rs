//! examples/llm-rag end to end, on the real binary, in a copy of the example: a BM25 index,
//! retrieval, prompt variants A and B through a `for` loop, accuracy gates, a provider
//! with retries and a local fallback during a simulated outage, token and time metrics.

use crate::common::{Run, Workspace, names, skip_or_fail};
use serde_json::Value;

fn read_json(ws: &Workspace, rel: &str) -> Value {
    serde_json::from_str(&ws.read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `mlp run --json ARGS` with the caller's environment, minus any LLM_OUTAGE, plus `env`.
fn run_with(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    let mut c = ws.command(&all).env_remove("LLM_OUTAGE");
    for (k, v) in env {
        c = c.env(k, v);
    }
    c.run().events()
}

fn edit(ws: &Workspace, rel: &str, from: &str, to: &str) {
    let text = ws.read(rel);
    assert!(text.contains(from), "{rel} has no {from:?}");
    ws.write(rel, text.replacen(from, to, 1));
}

#[test]
fn llm_rag_pipeline_ab_prompts_fallback_and_costs() {
    let has_python = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_python {
        skip_or_fail("python3 is not available");
        return;
    }
    let ws = Workspace::example("llm-rag");
    let all = [
        "ab_report",
        "answer_a",
        "answer_b",
        "eval_a",
        "eval_b",
        "index",
        "retrieve",
    ];

    // 1. Everything runs; the hosted model answers; every gate passes.
    let r = run_with(&ws, &[], &[]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&all), "{:?}", r.statuses());
    let show = ws.mlp(&["show", "last", "--json"]).success().json();
    let stages = &show["stages"];
    for v in ["a", "b"] {
        let cost = &stages[format!("answer_{v}")]["metrics"]["cost"];
        assert!(cost["prompt_tokens"].as_u64().unwrap() > 100, "{cost}");
        assert!(cost["completion_tokens"].as_u64().unwrap() > 0, "{cost}");
        assert_eq!(
            cost["total_tokens"].as_u64().unwrap(),
            cost["prompt_tokens"].as_u64().unwrap() + cost["completion_tokens"].as_u64().unwrap()
        );
        assert!(cost["seconds"].is_number(), "{cost}");
        assert_eq!(cost["model"], "sim-llm");
        assert_ne!(stages[format!("answer_{v}")]["fallback_used"], true);
        let quality = &stages[format!("eval_{v}")]["metrics"]["quality"];
        assert!(quality["accuracy"].as_f64().unwrap() >= 0.6, "{quality}");
    }
    // Variant b puts three passages in the prompt: more tokens than a.
    assert!(
        stages["answer_b"]["metrics"]["cost"]["prompt_tokens"].as_u64()
            > stages["answer_a"]["metrics"]["cost"]["prompt_tokens"].as_u64()
    );
    let index = &stages["index"]["metrics"]["stats"];
    assert!(index["tokens"].as_u64().unwrap() > 500, "{index}");
    assert!(index["chunks"].as_u64().unwrap() >= 11, "{index}");
    assert_eq!(
        stages["retrieve"]["metrics"]["retrieval"]["recall_at_k"],
        1.0
    );
    let ab = read_json(&ws, "metrics/ab.json");
    assert!(
        ab["variants"]["a"].is_object() && ab["variants"]["b"].is_object(),
        "{ab}"
    );
    assert!(ws.read("reports/ab.md").contains("| a |"));

    // 2. Nothing changed: nothing to do.
    assert!(run_with(&ws, &[], &[]).nothing_to_do());

    // 3. Editing prompt A reruns exactly A's answers and evaluation (and the A/B report
    //    that reads their metrics); the index, retrieval and the B side stay fresh.
    edit(
        &ws,
        "prompts/answer_a.txt",
        "Answer the question in one sentence",
        "Be precise. Answer the question in one sentence",
    );
    let r = run_with(&ws, &[], &[]);
    r.assert_ok();
    assert_eq!(
        r.ran(),
        names(&["ab_report", "answer_a", "eval_a"]),
        "{:?}",
        r.statuses()
    );
    for s in ["index", "retrieve", "answer_b", "eval_b"] {
        assert_eq!(r.statuses()[s], "fresh", "{s}: {:?}", r.statuses());
    }
    let after_edit = ws.mlp(&["runs", "--json", "--limit", "1"]).success().json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let d = ws
        .mlp(&["diff", "1", &after_edit, "--json"])
        .success()
        .json();
    let tokens = d["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["key"] == "metrics.answer_a.cost.prompt_tokens")
        .unwrap_or_else(|| panic!("no prompt_tokens row in {d}"));
    assert_eq!(
        tokens["delta"].as_f64().unwrap(),
        24.0 * 2.0,
        "two words more per prompt: {d}"
    );

    // 4. The hosted model is down (LLM_OUTAGE in mlp's environment, which stages inherit)
    //    while prompt B changes: answer_b tries it three times (retry 2), then the
    //    fallback answers with the local model; the run succeeds and records it.
    edit(
        &ws,
        "prompts/answer_b.txt",
        "Read all the numbered passages",
        "Carefully read all the numbered passages",
    );
    let r = run_with(&ws, &[], &[("LLM_OUTAGE", "1")]);
    r.assert_ok();
    assert_eq!(
        r.ran(),
        names(&["ab_report", "answer_b", "eval_b"]),
        "{:?}",
        r.statuses()
    );
    let ev = r.event("answer_b");
    assert_eq!(ev["attempts"], 3, "{ev}");
    assert!(ev["notes"].to_string().contains("fallback"), "{ev}");
    let show = ws.mlp(&["show", "last", "--json"]).success().json();
    let b = &show["stages"]["answer_b"];
    assert_eq!(b["fallback_used"], true, "{b}");
    assert_eq!(b["metrics"]["cost"]["model"], "local-extractive", "{b}");
    assert_eq!(b["metrics"]["cost"]["fallback"], 1, "{b}");
    assert_eq!(b["metrics"]["cost"]["usd"], 0.0, "{b}");
    assert!(
        ws.read("out/answers_b.jsonl")
            .contains("\"model\": \"local-extractive\"")
    );
    // The log keeps the primary's failures before the fallback's output.
    let log = std::fs::read_to_string(ws.path().join(ev["log"].as_str().unwrap())).unwrap();
    assert!(log.contains("503"), "{log}");
    let quality = read_json(&ws, "metrics/quality_b.json");
    assert_eq!(quality["models"], "local-extractive", "{quality}");
    assert!(quality["accuracy"].as_f64().unwrap() >= 0.6, "{quality}");

    // 5. The outage is over: a fallback's answers serve one run only, so the next plain
    //    run asks the hosted model again (the README says so).
    let r = run_with(&ws, &[], &[]);
    r.assert_ok();
    assert!(
        r.ran().contains(&"answer_b".to_string()),
        "{:?}",
        r.statuses()
    );
    let show = ws.mlp(&["show", "last", "--json"]).success().json();
    assert_ne!(show["stages"]["answer_b"]["fallback_used"], true);
    assert_eq!(
        show["stages"]["answer_b"]["metrics"]["cost"]["model"],
        "sim-llm"
    );
    let runs = ws.mlp(&["runs", "--json"]).success().json();
    assert_eq!(runs.as_array().unwrap().len(), 4, "{runs}");
}
