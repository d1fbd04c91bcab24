//! Snapshot tests on fixed run records: what `mlp runs` prints, the HTML page, the
//! Markdown and its charts. The same records always give the same bytes.

use serde_json::{Value, json};

use crate::model::{Assertion, DagNode, Limit, Report, Run, Threshold};
use crate::table::{Columns, num, signed};
use crate::{critical_path, html, markdown, runs_table};

const T0: u64 = 1_764_000_000_000;

/// A record as the store keeps it: train → evaluate → report, with `params.lr`, an AUC and a
/// cost; `gate_fails` makes evaluate's gate fail.
fn record(id: u64, lr: f64, auc: f64, gate_fails: bool) -> Value {
    let start = T0 + id * 3_600_000;
    let evaluate = if gate_fails {
        json!({"status": "failed", "kind": "gate", "reason": format!("gate failed: eval.auc >= params.min_auc ({auc} >= 0.8): AUC below the floor <b>")})
    } else {
        json!({"status": "ran", "attempts": 1})
    };
    let mut evaluate = evaluate;
    evaluate["started_ms"] = (start + 2_000).into();
    evaluate["ended_ms"] = (start + 2_600).into();
    evaluate["cpu_ms"] = 550.into();
    evaluate["max_rss_kb"] = 40_960.into();
    evaluate["metrics"] = json!({"eval": {"auc": auc, "p95_latency_ms": 12.5 + id as f64}});
    json!({
        "id": format!("{id:08}"),
        "pipeline": "x <script>alert(1)</script>",
        "started_ms": start,
        "ended_ms": start + 3_000,
        "ok": !gate_fails,
        "interrupted": false,
        "git": {"commit": "0123456789abcdef", "dirty": id == 3},
        "params": {"lr": lr, "min_auc": 0.8, "note": format!("a|b <i> {id}")},
        "order": ["prepare", "train", "evaluate", "report"],
        "stages": {
            "prepare": {"status": "fresh", "metrics": null, "from_run": "00000001"},
            "train": {"status": "ran", "attempts": 1, "started_ms": start + 10, "ended_ms": start + 1_990,
                       "cpu_ms": 1_900, "max_rss_kb": 204_800,
                       "metrics": {"cost": {"usd": 0.25 * id as f64, "prompt_tokens": 1000, "completion_tokens": 200 * id}}},
            "evaluate": evaluate,
            "report": if gate_fails { json!({"status": "skipped", "reason": "upstream `evaluate` failed"}) }
                      else { json!({"status": "ran", "attempts": 1, "started_ms": start + 2_600, "ended_ms": start + 2_900}) },
        }
    })
}

fn report() -> Report {
    let runs: Vec<Run> = [
        record(1, 0.1, 0.81, false),
        record(2, 0.05, 0.84, false),
        record(3, 0.5, 0.78, true),
    ]
    .iter()
    .map(Run::from_record)
    .collect();
    Report {
        pipeline: "x <script>alert(1)</script>".into(),
        baseline: Some(runs[0].clone()),
        runs,
        assertions: vec![
            Assertion {
                stage: "evaluate".into(),
                kind: "gate".into(),
                text: "eval.auc >= params.min_auc".into(),
                message: Some("AUC below the floor <b>".into()),
                metric: Some("evaluate.eval.auc".into()),
                threshold: Some(Threshold {
                    op: ">=".into(),
                    limit: Limit::Param("min_auc".into()),
                }),
                higher_is_better: Some(true),
            },
            Assertion {
                stage: "evaluate".into(),
                kind: "check".into(),
                text: "eval.p95_latency_ms <= 50".into(),
                message: None,
                metric: Some("evaluate.eval.p95_latency_ms".into()),
                threshold: Some(Threshold {
                    op: "<=".into(),
                    limit: Limit::Const(50.0),
                }),
                higher_is_better: Some(false),
            },
        ],
        dag: vec![
            DagNode {
                name: "prepare".into(),
                deps: vec![],
            },
            DagNode {
                name: "train".into(),
                deps: vec![0],
            },
            DagNode {
                name: "evaluate".into(),
                deps: vec![1],
            },
            DagNode {
                name: "report".into(),
                deps: vec![2],
            },
        ],
        wanted: Vec::new(),
    }
}

#[test]
fn runs_table_has_metric_columns_deltas_and_costs() {
    let r = report();
    insta::assert_snapshot!("runs_table", runs_table(&r));
    insta::assert_snapshot!("runs_notes", crate::notes(&r));
}

#[test]
fn metrics_a_run_did_not_produce_are_not_its_own() {
    let mut r = record(4, 0.1, 0.9, false);
    r["stages"]["evaluate"] = json!({"status": "skipped", "reason": "upstream failed",
        "from_run": "00000002", "metrics": {"eval": {"auc": 0.84}}});
    r["stages"]["train"] = json!({"status": "failed", "kind": "missing_input",
        "from_run": "00000002", "metrics": {"cost": {"usd": 1.0}}});
    let run = Run::from_record(&r);
    assert!(run.metrics.is_empty(), "{:?}", run.metrics);
    // A fresh stage's metrics hold in the run; a gate judged again keeps its own.
    r["stages"]["evaluate"] = json!({"status": "fresh", "from_run": "00000002",
        "metrics": {"eval": {"auc": 0.84}}});
    r["stages"]["train"] = json!({"status": "failed", "kind": "gate", "attempts": 0,
        "metrics": {"cost": {"usd": 1.0}}});
    let run = Run::from_record(&r);
    assert_eq!(run.metrics.len(), 2, "{:?}", run.metrics);
}

#[test]
fn wanted_metrics_match_with_or_without_their_stage() {
    let mut r = report();
    r.wanted = vec!["cost.usd".into(), "evaluate.eval.auc".into(), "nope".into()];
    let labels: Vec<String> = Columns::of(&r)
        .metrics
        .into_iter()
        .map(|m| m.label)
        .collect();
    assert_eq!(labels, ["cost.usd", "eval.auc", "nope"]);
}

#[test]
fn costs_are_totals_per_unit() {
    let cols = Columns::of(&report());
    let labels: Vec<&str> = cols.costs.iter().map(|c| c.label).collect();
    assert_eq!(labels, ["usd", "tokens"]);
    let r = report();
    assert_eq!(cols.costs[1].total(&r.runs[2]), Some(1600.0));
}

#[test]
fn html_page_snapshot() {
    insta::assert_snapshot!("html", html(&report()));
}

#[test]
fn html_is_deterministic_self_contained_and_escaped() {
    let r = report();
    let page = html(&r);
    assert_eq!(page, html(&r));
    assert!(page.contains("x &lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.contains("<script>alert"));
    assert!(!page.contains("<b>"), "a gate message is text, not markup");
    assert_eq!(
        page.matches("<script>").count(),
        1,
        "only the page's own script"
    );
    assert!(page.contains("default-src 'none'"));
    for url in ["http://", "https://", "//cdn", "src=\"", "href=\"", "url("] {
        // The SVG namespace is only written into standalone files.
        assert!(
            !page.contains(url),
            "the page refers to something outside it: {url}"
        );
    }
    let script = page
        .split("<script>")
        .nth(1)
        .unwrap()
        .split("</script>")
        .next()
        .unwrap();
    assert!(script.len() < 2048, "the script is {} bytes", script.len());
}

#[test]
fn every_chart_is_drawn() {
    let page = html(&report());
    for chart in [
        "data-chart=\"metric\" data-metric=\"evaluate.eval.auc\" data-points=\"3\"",
        "data-chart=\"metric\" data-metric=\"evaluate.eval.p95_latency_ms\" data-points=\"3\"",
        "data-chart=\"scatter\" data-param=\"lr\" data-metric=\"evaluate.eval.auc\"",
        "data-chart=\"timeline\"",
        "data-chart=\"dag\" data-stages=\"4\"",
    ] {
        assert!(page.contains(chart), "no {chart}");
    }
    assert!(page.contains("data-series=\"baseline\""));
    assert!(page.contains("data-series=\"threshold\""));
    assert!(
        page.contains("class=\"pt fail\" data-run=\"3\""),
        "the failed run is marked"
    );
    assert!(page.contains("gate &gt;= 0.8"));
    assert!(page.contains("check &lt;= 50"));
}

#[test]
fn markdown_and_its_charts() {
    let md = markdown(&report(), "report_files");
    insta::assert_snapshot!("markdown", md.text);
    let names: Vec<&str> = md.files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "report_files/metric-1-evaluate.eval.auc.svg",
            "report_files/metric-2-evaluate.eval.p95_latency_ms.svg",
            "report_files/scatter-1-1.svg",
            "report_files/scatter-1-2.svg",
            "report_files/timeline.svg",
            "report_files/dag.svg"
        ]
    );
    let svg = &md.files[0].1;
    assert!(svg.starts_with("<svg") && svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(
        svg.contains("<style>"),
        "a standalone chart carries its style"
    );
    insta::assert_snapshot!("metric_svg", svg);
    assert!(md.text.contains("x &lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        md.text.contains("a\\|b &lt;i&gt; 3"),
        "a cell cannot break the table"
    );
}

#[test]
fn critical_path_follows_what_ended_last() {
    let r = report();
    assert_eq!(
        critical_path(&r.runs[1], &r.dag),
        ["train", "evaluate", "report"]
    );
    assert_eq!(critical_path(&r.runs[2], &r.dag), ["train", "evaluate"]);
}

#[test]
fn ticks_are_round() {
    let (t, lo, hi) = crate::svg::ticks(0.78, 0.84, 5);
    assert_eq!((lo, hi), (0.78, 0.84));
    assert_eq!(t.len(), 4);
    let (t, _, _) = crate::svg::ticks(3.0, 3.0, 5);
    assert!(t.len() >= 2);
    assert_eq!(num(0.30000000000000004), "0.3");
    assert_eq!(signed(-0.0417), "-0.0417");
    assert_eq!(signed(0.0), "±0");
    assert_eq!(signed(-0.000132), "-0.00013");
    assert_eq!(num(4e-6), "0.000004");
}

#[test]
fn fifty_runs_stay_small() {
    let mut r = report();
    r.runs = (1..=50)
        .map(|i| {
            Run::from_record(&record(
                i,
                0.01 * i as f64,
                0.7 + (i % 7) as f64 / 50.0,
                i % 9 == 0,
            ))
        })
        .collect();
    let page = html(&r);
    assert!(page.len() < 250_000, "{} bytes", page.len());
}
