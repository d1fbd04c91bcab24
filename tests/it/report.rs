//! `mlp report`, the metric columns of `mlp runs`, `mlp diff` of many runs, run ids written
//! one way, and the live progress line, end to end on the real binary. The report is
//! opened in headless Chromium (`$MLP_CHROMIUM` or `chromium`): every chart drawn, no
//! network request, a screenshot kept at `target/report-screenshot.png`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{Workspace, root, skip_or_fail};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn has_python() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// llm-rag, three runs: as shipped (promoted), fewer passages, and a stricter accuracy
/// gate that variant b fails.
fn llm_rag_three_runs() -> Option<Workspace> {
    if !has_python() {
        skip_or_fail("python3 is not available");
        return None;
    }
    let ws = Workspace::example("llm-rag");
    ws.mlp(&["run"]).success().stdout().to_string();
    ws.mlp(&["promote", "1"]).success().stdout().to_string();
    ws.mlp(&["run", "--set", "retrieve.top_k=1"])
        .success()
        .stdout()
        .to_string();
    let worse = ws.mlp(&["run", "--set", "eval.min_accuracy=0.9"]);
    assert_eq!(Some(worse.code()), Some(3), "{}", worse.stderr());
    Some(ws)
}

#[test]
fn llm_rag_report_shows_the_metric_series_and_the_failed_gate() {
    let Some(ws) = llm_rag_three_runs() else {
        return;
    };
    let out = ws.mlp(&["report", "-o", "report.html"]);
    let out = out.success();
    assert!(out.stderr().contains("wrote `report.html` (3 runs"));
    let page = ws.read("report.html");
    for metric in [
        "retrieve.retrieval.recall_at_k",
        "eval_a.quality.accuracy",
        "eval_b.quality.accuracy",
    ] {
        assert!(
            page.contains(&format!(
                "data-chart=\"metric\" data-metric=\"{metric}\" data-points=\"3\""
            )),
            "no chart of {metric} over 3 runs"
        );
    }
    // Run 3 failed eval_b's gate: marked on its chart, its message in the table.
    assert!(page.contains("class=\"pt fail\" data-run=\"3\""));
    assert!(page.contains("prompt variant b answers too few questions correctly"));
    assert!(page.contains("gate &gt;= 0.9"), "the gate's threshold line");
    assert!(page.contains("baseline (run 1)"));
    assert!(page.contains("data-chart=\"scatter\" data-param=\"retrieve.top_k\""));
    assert!(page.contains("data-chart=\"timeline\""));
    assert!(page.contains("data-chart=\"dag\" data-stages=\"7\""));

    // Markdown, with the charts beside it.
    let out = ws.mlp(&[
        "report",
        "--format",
        "md",
        "-o",
        "pr/report.md",
        "--last",
        "2",
    ]);
    out.success();
    let md = ws.read("pr/report.md");
    assert!(md.contains("| 3 |") && md.contains("| 2 |") && !md.contains("| 1 (baseline) |"));
    assert!(md.contains("](report_files/metric-3-retrieve.retrieval.recall_at_k.svg)"));
    let svg = ws.read("pr/report_files/metric-2-eval_b.quality.accuracy.svg");
    assert!(svg.starts_with("<svg") && svg.contains("data-points=\"2\""));
    assert!(ws.path().join("pr/report_files/dag.svg").exists());
}

#[test]
fn runs_diff_and_show_agree_on_metrics_and_run_ids() {
    let Some(ws) = llm_rag_three_runs() else {
        return;
    };
    // The terminal table: the gated metrics, the change against the baseline, costs.
    let runs = ws.mlp(&["runs"]).success().stdout().to_string();
    let header = runs.lines().next().unwrap();
    for col in [
        "retrieval.recall_at_k",
        "eval_a.quality.accuracy",
        "eval_b.quality.accuracy",
        "usd",
        "tokens",
    ] {
        assert!(header.contains(col), "no {col} column: {runs}");
    }
    let line = |id: &str| {
        runs.lines()
            .find(|l| l.trim_start().starts_with(id))
            .unwrap_or_else(|| panic!("no run {id}: {runs}"))
            .to_string()
    };
    assert!(line("1*").contains("ok"));
    assert!(line("2 ").contains("(-"), "run 2 retrieves less: {runs}");
    assert!(line("3 ").contains("FAILED"));
    let out = ws.mlp(&["runs", "--metrics", "cost.usd"]);
    let t = out.stdout();
    assert!(
        t.contains("answer_a.cost.usd") && t.contains("answer_b.cost.usd"),
        "{t}"
    );
    assert!(!t.lines().next().unwrap().contains("eval_a"), "{t}");

    let j = ws.mlp(&["runs", "--json"]).success().json();
    let newest = &j[0];
    assert_eq!(newest["id"], "3");
    assert!(newest["metrics"]["eval_b.quality.accuracy"].is_number());
    assert!(newest["deltas"]["eval_b.quality.accuracy"].is_number());
    assert!(newest["costs"]["usd"].as_f64().unwrap() > 0.0);
    assert_eq!(newest["failed"][0]["stage"], "eval_b");
    assert_eq!(newest["failed"][0]["kind"], "gate");

    // One way to write a run id, in text and JSON.
    assert_eq!(ws.mlp(&["show", "3", "--json"]).success().json()["id"], "3");
    assert_eq!(
        ws.mlp(&["show", "00000002", "--json"]).success().json()["id"],
        "2"
    );
    let explain = ws.mlp(&["explain", "index", "--json"]).success().json();
    assert_eq!(explain["last_success"]["run"], "1");
    let events = ws
        .mlp(&["run", "--json", "--force", "ab_report"])
        .success()
        .stdout()
        .to_string();
    let start: Value = serde_json::from_str(events.lines().next().unwrap()).unwrap();
    assert_eq!(start["run"], "4");

    // diff of many runs: a column each, deltas against the first.
    let d = ws.mlp(&["diff", "1", "2", "3", "--json"]).success().json();
    assert_eq!(d["runs"], serde_json::json!(["1", "2", "3"]));
    let row = d["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "params.retrieve.top_k")
        .unwrap();
    assert_eq!(row["values"], serde_json::json!([3, 1, 3]));
    assert_eq!(row["deltas"], serde_json::json!([0.0, -2.0, 0.0]));
    let last = ws
        .mlp(&["diff", "--last", "3"])
        .success()
        .stdout()
        .to_string();
    let head = last.lines().next().unwrap();
    assert!(
        head.contains("run 2") && head.contains("run 3") && head.contains("run 4"),
        "{last}"
    );
    assert!(last.contains("params.eval.min_accuracy"), "{last}");
    // Two runs: the two-column layout as before.
    assert!(
        ws.mlp(&["diff", "1", "2"])
            .success()
            .stdout()
            .to_string()
            .contains("delta")
    );
}

#[test]
fn user_strings_are_text_in_the_report() {
    let ws = Workspace::new(
        r#"
pipeline "x <script>alert(1)</script>"
stage evaluate {
  metrics eval = "m.json"
  run     "echo '{\"a<b>\": 1, \"auc\": 0.5}' > m.json"
  gate    eval.auc >= 0.9   "<img src=x onerror=alert(2)>"
}
"#,
    );
    assert_eq!(Some(ws.mlp(&["run"]).code()), Some(3));
    ws.mlp(&["report", "-o", "r.html", "--metrics", "eval.auc,eval.a<b>"])
        .success()
        .stdout()
        .to_string();
    let page = ws.read("r.html");
    assert!(page.contains("x &lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&lt;img src=x onerror=alert(2)&gt;"));
    assert!(page.contains("eval.a&lt;b&gt;"));
    assert!(!page.contains("<script>alert") && !page.contains("<img"));
    assert_eq!(page.matches("<script>").count(), 1);
    if let Some(dom) = chromium_dom(&ws, "r.html", None) {
        assert_eq!(
            dom.matches("<script").count(),
            1,
            "only the page's own script"
        );
        assert!(!dom.contains("<img"), "a gate message became markup");
        assert!(dom.contains("mlp report: x &lt;script&gt;alert(1)&lt;/script&gt;"));
    }
}

#[test]
fn chromium_draws_every_chart_and_requests_nothing() {
    let Some(ws) = llm_rag_three_runs() else {
        return;
    };
    ws.mlp(&["report", "-o", "report.html"])
        .success()
        .stdout()
        .to_string();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let shot = target.join("report-screenshot.png");
    let Some(dom) = chromium_dom(&ws, "report.html", Some(&shot)) else {
        return;
    };
    // Every chart is an <svg> with drawn content; the metric charts have their series.
    let charts: Vec<&str> = dom.split("<svg class=\"chart\"").skip(1).collect();
    assert_eq!(
        charts.len(),
        3 + 3 + 1 + 1,
        "metric, scatter, timeline and DAG charts"
    );
    for c in &charts {
        let body = &c[..c.find("</svg>").expect("an unclosed <svg>")];
        assert!(
            body.matches("<path").count()
                + body.matches("<rect").count()
                + body.matches("<circle").count()
                >= 3,
            "an empty chart: {body}"
        );
    }
    let metric: Vec<&&str> = charts
        .iter()
        .filter(|c| c.contains("data-chart=\"metric\""))
        .collect();
    assert_eq!(metric.len(), 3);
    for c in metric {
        assert!(c.contains("data-series=\"value\" d=\"M"), "no value series");
        assert!(c.contains("data-series=\"baseline\""), "no baseline line");
        assert!(c.matches("class=\"pt").count() >= 3, "fewer than 3 points");
    }
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a blank screenshot?"
    );
}

/// Open `page` in headless Chromium: its DOM after scripts ran, the netlog checked for any
/// request the page made, and (with `shot`) a screenshot. `None` when there is no Chromium
/// (outside CI).
fn chromium_dom(ws: &Workspace, page: &str, shot: Option<&Path>) -> Option<String> {
    let exe = std::env::var("MLP_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    if Command::new(&exe).arg("--version").output().is_err() {
        skip_or_fail(&format!(
            "no Chromium (`{exe}`; set MLP_CHROMIUM to its path)"
        ));
        return None;
    }
    let url = format!("file://{}", ws.path().join(page).display());
    let profile = tempfile::tempdir().unwrap();
    let netlog = profile.path().join("netlog.json");
    let browser = |extra: &[String]| {
        let out = Command::new(&exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
            ])
            .arg(format!(
                "--user-data-dir={}",
                profile.path().join("profile").display()
            ))
            .args(extra)
            .arg(&url)
            .output()
            .expect("cannot start Chromium");
        assert!(
            out.status.success(),
            "Chromium failed: {}",
            text(&out.stderr)
        );
        out
    };
    let dom = text(
        &browser(&[
            "--dump-dom".into(),
            format!("--log-net-log={}", netlog.display()),
        ])
        .stdout,
    );
    assert!(dom.contains("</html>"), "no DOM: {dom}");
    for bad in ["http://", "https://", "src=\"//", "href=\"//"] {
        assert!(!dom.contains(bad), "the page refers to {bad}");
    }
    assert!(dom.contains("default-src 'none'"), "the page's CSP");
    assert_eq!(
        page_requests(&netlog),
        Vec::<String>::new(),
        "the page made requests"
    );
    if let Some(shot) = shot {
        std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
        browser(&[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000".into(),
        ]);
        eprintln!("screenshot: {}", shot.display());
    }
    Some(dom)
}

/// The URLs of requests the page started. Chromium's own (update checks, ...) have no
/// origin as initiator; anything a page starts has one (`null` for a file).
fn page_requests(netlog: &Path) -> Vec<String> {
    let log: Value = serde_json::from_str(&std::fs::read_to_string(netlog).unwrap())
        .expect("the netlog is JSON");
    let start = &log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"];
    log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == *start && e["params"]["url"].is_string())
        .filter(|e| e["params"]["initiator"] != "not an origin")
        .map(|e| e["params"]["url"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[test]
fn the_live_line_names_the_running_stage_and_ticks() {
    if Command::new("script").arg("--version").output().is_err() {
        skip_or_fail("no `script` (util-linux) to give mlp a terminal");
        return;
    }
    let ws = Workspace::new(
        r#"
pipeline "p"
stage slow {
  out o = "o.txt"
  run "sleep 1.2; echo x > o.txt"
}
"#,
    );
    let exe = env!("CARGO_BIN_EXE_mlp");
    let run = |env: &[(&str, &str)]| {
        let mut c = Command::new("script");
        c.current_dir(ws.path())
            .args(["-qec", &format!("{exe} run --force slow"), "/dev/null"])
            .env_remove("NO_COLOR")
            .env("TERM", "xterm");
        for (k, v) in env {
            c.env(k, v);
        }
        text(&c.output().unwrap().stdout)
    };
    let out = run(&[]);
    let mut ticks: Vec<&str> = out
        .split(['\r', '\n'])
        .filter_map(|l| l.split("running slow ").nth(1))
        .map(|r| r.split(' ').next().unwrap_or(""))
        .collect();
    ticks.dedup();
    assert!(ticks.len() >= 3, "the elapsed time does not tick: {out:?}");
    assert!(out.contains("\x1b[32m"), "✓ in colour on a terminal");
    assert!(!run(&[("NO_COLOR", "1")]).contains("\x1b[32m"), "NO_COLOR");
    let dumb = run(&[("TERM", "dumb")]);
    assert!(
        !dumb.contains("running slow") && dumb.contains("  > slow"),
        "{dumb:?}"
    );
}

#[test]
fn runs_shows_at_most_six_metric_columns_unless_asked() {
    let fields = ["a", "b", "c", "d", "e", "f", "g"];
    let json: Vec<String> = fields.iter().map(|f| format!("\\\"{f}\\\": 1")).collect();
    let gates: Vec<String> = fields
        .iter()
        .map(|f| format!("  check m.{f} >= 0"))
        .collect();
    let ws = Workspace::new(&format!(
        "pipeline \"p\"\nstage s {{\n  metrics m = \"m.json\"\n  run \"echo '{{{}}}' > m.json\"\n{}\n  gate m.g <= 2\n}}\n",
        json.join(", "),
        gates.join("\n")
    ));
    ws.mlp(&["run"]).success().stdout().to_string();
    let out = ws.mlp(&["runs"]);
    let header = out.stdout().lines().next().unwrap().to_string();
    // The gate's metric first, then the checks'.
    let cols: Vec<&str> = header
        .split_whitespace()
        .filter(|w| w.starts_with("m."))
        .collect();
    assert_eq!(cols, ["m.g", "m.a", "m.b", "m.c", "m.d", "m.e"], "{header}");
    assert!(
        out.stderr().contains("(1 more metric the checks read"),
        "{}",
        out.stderr()
    );
    let asked = ws
        .mlp(&["runs", "--metrics", "m.f"])
        .success()
        .stdout()
        .to_string();
    let header = asked.lines().next().unwrap();
    assert!(
        header.contains("m.f") && !header.contains("m.g"),
        "{header}"
    );
    assert_eq!(
        ws.mlp(&["runs", "--json"]).success().json()[0]["metrics"]["s.m.f"],
        1.0
    );
}
