//! The planning commands on the real binary: `graph` in every format, `fmt`, `check --json`.

mod common;

use common::Ws;

const MESSY: &str = "pipeline \"g\"   # the name\nstage a { out o = \"a.txt\"  run \"echo a > ${out.o}\" }\nstage b {\n in a.o\n out o=\"b.txt\"\n run \"cp ${in[0]} ${out.o}\" }\n";

fn stdout(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn graph_in_every_format() {
    let ws = Ws::new(MESSY);
    let ascii = stdout(&ws.mlp(&["graph"]));
    assert!(ascii.contains("b  <- a"), "{ascii}");
    let dot = stdout(&ws.mlp(&["graph", "--format", "dot"]));
    assert!(
        dot.starts_with("digraph \"g\"") && dot.contains("\"a\" -> \"b\";"),
        "{dot}"
    );
    let mermaid = stdout(&ws.mlp(&["graph", "--format", "mermaid"]));
    assert!(
        mermaid.starts_with("flowchart LR") && mermaid.contains("s0 --> s1"),
        "{mermaid}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&ws.mlp(&["graph", "--format", "json"]))).unwrap();
    assert_eq!(json["edges"][0]["from"], "a");
    assert_eq!(json["edges"][0]["to"], "b");
    assert_eq!(json["edges"][0]["kind"], "data");
}

#[test]
fn fmt_check_rewrite_and_idempotence() {
    let ws = Ws::new(MESSY);
    let check = ws.mlp(&["fmt", "--check"]);
    assert_eq!(check.status.code(), Some(5));
    assert_eq!(
        String::from_utf8_lossy(&check.stdout).trim(),
        "pipeline.mlp"
    );
    assert_eq!(ws.read("pipeline.mlp"), MESSY, "--check must not write");
    stdout(&ws.mlp(&["fmt"]));
    let once = ws.read("pipeline.mlp");
    assert!(once.contains("# the name"), "comments are kept: {once}");
    assert!(
        once.contains("stage b {\n  in  a.o\n  out o = \"b.txt\"\n"),
        "{once}"
    );
    assert_eq!(ws.mlp(&["fmt", "--check"]).status.code(), Some(0));
    stdout(&ws.mlp(&["fmt"]));
    assert_eq!(ws.read("pipeline.mlp"), once, "fmt is idempotent");
    // The formatted file means the same: the same DAG.
    let a = stdout(&Ws::new(MESSY).mlp(&["graph", "--format", "json"]));
    let b = stdout(&ws.mlp(&["graph", "--format", "json"]));
    assert_eq!(a, b);
}

#[test]
fn fmt_reports_a_syntax_error_and_leaves_the_file() {
    let ws = Ws::new("stage a {\n  run \"x\"\n");
    let out = ws.mlp(&["fmt"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pipeline.mlp"), "{err}");
    assert_eq!(ws.read("pipeline.mlp"), "stage a {\n  run \"x\"\n");
}

#[test]
fn check_json_for_tools() {
    let ws = Ws::new(MESSY);
    let ok: serde_json::Value =
        serde_json::from_str(&stdout(&ws.mlp(&["check", "--json"]))).unwrap();
    assert_eq!(ok["stages"], 2);
    assert_eq!(ok["errors"].as_array().unwrap().len(), 0);
}

#[test]
fn the_pipeline_file_is_found_upward_and_a_missing_one_is_explained() {
    let ws = Ws::new(MESSY);
    std::fs::create_dir_all(ws.path().join("deep/er")).unwrap();
    let out = std::process::Command::new(common::mlp_bin())
        .current_dir(ws.path().join("deep/er"))
        .args(["check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let empty = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::mlp_bin())
        .current_dir(empty.path())
        .args(["run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-f FILE"));
}
