//! The planning commands on the real binary: `graph` in every format, `fmt`, `check --json`.

use crate::common::Workspace;

const MESSY: &str = "pipeline \"g\"   # the name\nstage a { out o = \"a.txt\"  run \"echo a > ${out.o}\" }\nstage b {\n in a.o\n out o=\"b.txt\"\n run \"cp ${in[0]} ${out.o}\" }\n";

fn stdout(o: crate::common::Output) -> String {
    o.success().stdout().to_string()
}

#[test]
fn graph_in_every_format() {
    let ws = Workspace::new(MESSY);
    let ascii = stdout(ws.mlp(&["graph"]));
    assert!(ascii.contains("b  <- a"), "{ascii}");
    let dot = stdout(ws.mlp(&["graph", "--format", "dot"]));
    assert!(
        dot.starts_with("digraph \"g\"") && dot.contains("\"a\" -> \"b\";"),
        "{dot}"
    );
    let mermaid = stdout(ws.mlp(&["graph", "--format", "mermaid"]));
    assert!(
        mermaid.starts_with("flowchart LR") && mermaid.contains("s0 --> s1"),
        "{mermaid}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&stdout(ws.mlp(&["graph", "--format", "json"]))).unwrap();
    assert_eq!(json["edges"][0]["from"], "a");
    assert_eq!(json["edges"][0]["to"], "b");
    assert_eq!(json["edges"][0]["kind"], "data");
}

#[test]
fn fmt_check_rewrite_and_idempotence() {
    let ws = Workspace::new(MESSY);
    let check = ws.mlp(&["fmt", "--check"]).failure(5);
    assert_eq!(check.stdout().trim(), "pipeline.mlp");
    assert_eq!(ws.read("pipeline.mlp"), MESSY, "--check must not write");
    stdout(ws.mlp(&["fmt"]));
    let once = ws.read("pipeline.mlp");
    assert!(once.contains("# the name"), "comments are kept: {once}");
    assert!(
        once.contains("stage b {\n  in  a.o\n  out o = \"b.txt\"\n"),
        "{once}"
    );
    ws.mlp(&["fmt", "--check"]).success();
    stdout(ws.mlp(&["fmt"]));
    assert_eq!(ws.read("pipeline.mlp"), once, "fmt is idempotent");
    // The formatted file means the same: the same DAG.
    let a = stdout(Workspace::new(MESSY).mlp(&["graph", "--format", "json"]));
    let b = stdout(ws.mlp(&["graph", "--format", "json"]));
    assert_eq!(a, b);
}

#[test]
fn fmt_reports_a_syntax_error_and_leaves_the_file() {
    let ws = Workspace::new("stage a {\n  run \"x\"\n");
    let out = ws.mlp(&["fmt"]).failure(1);
    let err = out.stderr();
    assert!(err.contains("pipeline.mlp"), "{err}");
    assert_eq!(ws.read("pipeline.mlp"), "stage a {\n  run \"x\"\n");
}

#[test]
fn check_json_for_tools() {
    let ws = Workspace::new(MESSY);
    let ok: serde_json::Value =
        serde_json::from_str(&stdout(ws.mlp(&["check", "--json"]))).unwrap();
    assert_eq!(ok["stages"], 2);
    assert_eq!(ok["errors"].as_array().unwrap().len(), 0);
}

#[test]
fn the_pipeline_file_is_found_upward_and_a_missing_one_is_explained() {
    let ws = Workspace::new(MESSY);
    std::fs::create_dir_all(ws.path().join("deep/er")).unwrap();
    ws.command(&["check"])
        .current_dir(ws.path().join("deep/er"))
        .run()
        .success();
    let out = Workspace::empty().mlp(&["run"]).failure(1);
    assert!(out.stderr().contains("-f FILE"));
}

/// `mlp check` (and `mlp fmt`) on an include or params path that is a device, a FIFO, a
/// directory or a symlink loop: a clear error at once (reading `/dev/zero` or opening a
/// FIFO used to block forever). A command still running after a minute counts as hung.
#[test]
fn hostile_source_paths_are_refused_at_once() {
    use std::time::{Duration, Instant};
    let ws = Workspace::empty();
    let fifo = ws.path().join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    std::fs::create_dir(ws.path().join("dir")).unwrap();
    std::os::unix::fs::symlink("loop2", ws.path().join("loop1")).unwrap();
    std::os::unix::fs::symlink("loop1", ws.path().join("loop2")).unwrap();
    let stage = "stage a { out o = \"a.txt\"  run \"touch a.txt\" }\n";
    let cases = [
        (
            "include \"/dev/zero\"",
            "cannot read `/dev/zero`: it is a device, not a regular file",
        ),
        (
            "include \"fifo\"",
            "cannot read `fifo`: it is a FIFO, not a regular file",
        ),
        (
            "include \"dir\"",
            "cannot read `dir`: it is a directory, not a regular file",
        ),
        ("include \"loop1\"", "cannot read `loop1`: "),
        (
            "params \"/dev/zero\"",
            "cannot read params file `/dev/zero`: it is a device",
        ),
        (
            "params \"fifo\"",
            "cannot read params file `fifo`: it is a FIFO",
        ),
    ];
    for (item, says) in cases {
        ws.write("pipeline.mlp", format!("{item}\n{stage}"));
        let mut child = ws.command(&["check"]).spawn();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("`mlp check` on `{item}` hangs");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = crate::common::Output::of(child).failure(1);
        assert!(out.stderr().contains(says), "{item}: {}", out.stderr());
    }
    let out = ws.mlp(&["fmt", "--check", "/dev/zero"]).failure(1);
    assert!(out.stderr().contains("it is a device"), "{}", out.stderr());
}

/// `--set` is checked against the params file's types, names itself, and is bad usage
/// (exit 2); a quoted value forces a string.
#[test]
fn set_is_checked_against_the_params_types() {
    let ws = Workspace::new(
        "params \"params.yaml\"\nstage a { params train.lr  out o = \"a.txt\"  run \"echo ${params.train.lr} > a.txt\" }\n",
    );
    ws.write("params.yaml", "train:\n  lr: 0.5\n  name: gbm\n");
    let out = ws.mlp(&["check", "--set", "train.lr=abc"]).failure(2);
    assert!(
        out.stderr().contains(
            "`--set train.lr=abc`: `train.lr` is a number in the params, and `abc` is a string"
        ),
        "{}",
        out.stderr()
    );
    let out = ws.mlp(&["check", "--set", "train=5"]).failure(2);
    assert!(
        out.stderr().contains("`train` is a map"),
        "{}",
        out.stderr()
    );
    ws.mlp(&["check", "--set", "train.lr=abc", "--set", "trian.lr=1"])
        .failure(2);
    ws.mlp(&["check", "--set", "train.lr=1"]).success();
    ws.mlp(&["check", "--set", "train.name=7"]).failure(2);
    ws.mlp(&["check", "--set", "train.name=\"7\""]).success();
    // Not only check: a run with a bad `--set` runs nothing.
    ws.mlp(&["run", "--set", "train.lr=abc"]).failure(2);
    assert!(!ws.exists("a.txt"));
}
