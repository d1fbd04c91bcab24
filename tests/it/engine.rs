//! The incremental engine end to end: the real binary, real processes, a real sled store,
//! asserting on the JSON event log of which stages ran.

use std::time::{Duration, Instant};

use crate::common::{Output, Workspace, names};

/// a → b → c, and d on its own. `a` writes the number of lines of src.txt (so an edit that
/// keeps the line count leaves its output byte-identical: early cutoff).
const CHAIN: &str = r#"
pipeline "chain"
param n = 1
stage a {
  in "src.txt"
  out o = "out/a.txt"
  run "mkdir -p out && wc -l < src.txt | tr -d ' ' > ${out.o}"
}
stage b {
  in a.o
  out o = "out/b.txt"
  params n
  run "cat ${in[0]} > ${out.o} && echo n=${params.n} >> ${out.o}"
}
stage c {
  in b.o
  out o = "out/c.txt"
  run "cat ${in[0]} ${in[0]} > ${out.o}"
}
stage d {
  in "other.txt"
  out o = "out/d.txt"
  run "mkdir -p out && cp other.txt ${out.o}"
}
"#;

fn chain() -> Workspace {
    let ws = Workspace::new(CHAIN);
    ws.write("src.txt", "one\ntwo\n");
    ws.write("other.txt", "other\n");
    ws
}

#[test]
fn run_then_rerun_runs_nothing() {
    let ws = chain();
    let r = ws.run(&[]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["a", "b", "c", "d"]));
    assert_eq!(ws.read("out/c.txt"), "2\nn=1\n2\nn=1\n");
    let again = ws.run(&[]);
    again.assert_ok();
    assert!(again.nothing_to_do(), "{:?}", again.events);
    assert!(again.ran().is_empty());
    // The slow path agrees with the fast one (a target list bypasses the snapshot check).
    let targeted = ws.run(&["c", "d"]);
    targeted.assert_ok();
    assert!(targeted.ran().is_empty(), "{:?}", targeted.statuses());
    assert_eq!(targeted.with_status("fresh"), names(&["a", "b", "c", "d"]));
}

#[test]
fn one_input_change_runs_exactly_what_depends_on_it() {
    let ws = chain();
    ws.run(&[]).assert_ok();
    ws.write("other.txt", "changed\n");
    let r = ws.run(&[]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["d"]));
    assert_eq!(ws.read("out/d.txt"), "changed\n");
    ws.write("src.txt", "one\ntwo\nthree\n");
    let r = ws.run(&[]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["a", "b", "c"]));
    assert_eq!(ws.read("out/c.txt"), "3\nn=1\n3\nn=1\n");
}

#[test]
fn a_byte_identical_upstream_output_stops_the_rerun() {
    let ws = chain();
    ws.run(&[]).assert_ok();
    // Same number of lines: `a` reruns and writes the same bytes.
    ws.write("src.txt", "uno\ndos\n");
    let r = ws.run(&[]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["a"]));
    assert_eq!(r.with_status("fresh"), names(&["b", "c", "d"]));
}

#[test]
fn touching_a_file_without_changing_it_runs_nothing() {
    let ws = chain();
    ws.run(&[]).assert_ok();
    std::thread::sleep(Duration::from_millis(20));
    ws.write("src.txt", "one\ntwo\n");
    let r = ws.run(&[]);
    r.assert_ok();
    assert!(r.ran().is_empty(), "{:?}", r.statuses());
}

#[test]
fn reverting_a_param_restores_outputs_from_the_cache() {
    let ws = chain();
    ws.run(&[]).assert_ok();
    let first = ws.read("out/c.txt");
    ws.write("pipeline.mlp", CHAIN.replace("param n = 1", "param n = 2"));
    let r = ws.run(&[]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["b", "c"]));
    assert_eq!(ws.read("out/c.txt"), "2\nn=2\n2\nn=2\n");
    ws.write("pipeline.mlp", CHAIN);
    let r = ws.run(&[]);
    r.assert_ok();
    assert!(r.ran().is_empty(), "{:?}", r.statuses());
    assert_eq!(r.with_status("restored"), names(&["b", "c"]));
    assert_eq!(ws.read("out/c.txt"), first);
    // `--set` works the same way, and is not sticky.
    let r = ws.run(&["--set", "n=2"]);
    r.assert_ok();
    assert_eq!(r.with_status("restored"), names(&["b", "c"]));
    assert_eq!(ws.read("out/b.txt"), "2\nn=2\n");
    let r = ws.run(&[]);
    assert_eq!(r.with_status("restored"), names(&["b", "c"]));
    assert_eq!(ws.read("out/b.txt"), "2\nn=1\n");
}

#[test]
fn a_restored_output_edited_in_place_does_not_corrupt_the_cache() {
    let ws = chain();
    ws.run(&[]).assert_ok();
    std::fs::remove_file(ws.path().join("out/d.txt")).unwrap();
    let r = ws.run(&[]);
    assert_eq!(r.with_status("restored"), names(&["d"]));
    // Edit the restored file in place (append through the same inode).
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(ws.path().join("out/d.txt"))
        .unwrap();
    f.write_all(b"scribble\n").unwrap();
    drop(f);
    let r = ws.run(&[]);
    assert_eq!(
        r.with_status("restored"),
        names(&["d"]),
        "{:?}",
        r.statuses()
    );
    assert_eq!(ws.read("out/d.txt"), "other\n");
}

#[test]
fn a_tampered_cache_object_is_detected_and_rebuilt() {
    let ws = chain();
    ws.run(&[]).assert_ok();
    // Corrupt every object in the cache.
    let objects = ws.path().join(".mlp/cache/objects");
    let mut n = 0;
    for shard in std::fs::read_dir(&objects).unwrap() {
        for obj in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let p = obj.unwrap().path();
            let mut perm = std::fs::metadata(&p).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            std::fs::set_permissions(&p, perm).unwrap();
            std::fs::write(&p, "tampered").unwrap();
            n += 1;
        }
    }
    assert!(n >= 4);
    std::fs::remove_file(ws.path().join("out/d.txt")).unwrap();
    let r = ws.run(&[]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["d"]), "{:?}", r.statuses());
    assert_eq!(ws.read("out/d.txt"), "other\n");
}

#[test]
fn dry_run_says_what_would_run_and_runs_nothing() {
    let ws = chain();
    ws.run(&[]).assert_ok();
    ws.write("src.txt", "1\n2\n3\n");
    let r = ws.run(&["--dry-run"]);
    r.assert_ok();
    assert_eq!(r.with_status("would_run"), names(&["a", "b", "c"]));
    assert!(r.event("a")["reason"].as_str().unwrap().contains("src.txt"));
    assert_eq!(ws.read("out/a.txt"), "2\n");
    let r = ws.run(&[]);
    assert_eq!(r.ran(), names(&["a", "b", "c"]));
}

#[test]
fn targets_force_and_downstream_select_stages() {
    let ws = chain();
    let r = ws.run(&["b"]);
    r.assert_ok();
    assert_eq!(r.ran(), names(&["a", "b"]));
    assert!(!ws.exists("out/c.txt"));
    let r = ws.run(&["--force", "b", "b"]);
    assert_eq!(r.ran(), names(&["b"]));
    let r = ws.run(&["a", "--downstream"]);
    assert_eq!(r.ran(), names(&["c"]));
    assert!(!r.statuses().contains_key("d"));
    let bad = ws.mlp(&["run", "nope"]).failure(2);
    assert!(bad.stderr().contains("no stage `nope`"));
}

#[test]
fn directory_and_glob_inputs() {
    let ws = Workspace::new(
        r#"
pipeline "g"
stage dir {
  in "data/"
  out o = "dir.txt"
  run "ls data | sort > ${out.o}"
}
stage csvs {
  in "data/*.csv"
  out o = "csv.txt"
  run "cat data/*.csv > ${out.o}"
}
"#,
    );
    ws.write("data/a.csv", "a\n");
    ws.write("data/notes.md", "n\n");
    ws.run(&[]).assert_ok();
    ws.write("data/sub/deep.txt", "d\n");
    let r = ws.run(&[]);
    assert_eq!(r.ran(), names(&["dir"]));
    ws.write("data/b.csv", "b\n");
    let r = ws.run(&[]);
    assert_eq!(r.ran(), names(&["csvs", "dir"]));
    ws.write("data/notes.md", "changed\n");
    let r = ws.run(&[]);
    assert_eq!(r.ran(), names(&["dir"]));
}

#[test]
fn editing_the_pipeline_file_is_seen() {
    let ws = chain();
    ws.run(&[]).assert_ok();
    ws.write(
        "pipeline.mlp",
        CHAIN.replace("cat ${in[0]} ${in[0]}", "cat ${in[0]}"),
    );
    let r = ws.run(&[]);
    assert_eq!(r.ran(), names(&["c"]));
}

#[test]
fn status_and_explain_say_why() {
    let ws = chain();
    let out = ws.mlp(&["status"]);
    assert!(out.stdout().contains("never run"));
    ws.run(&[]).assert_ok();
    ws.write("other.txt", "new\n");
    let out = ws.mlp(&["status", "--json"]);
    let v: serde_json::Value = out.json();
    let d = v
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "d")
        .unwrap();
    assert_eq!(d["state"], "stale");
    assert!(d["reason"].as_str().unwrap().contains("other.txt"), "{d}");
    let a = v
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "a")
        .unwrap();
    assert_eq!(a["state"], "fresh");
    let out = ws.mlp(&["explain", "d"]);
    let text = out.stdout();
    assert!(text.contains("input `other.txt` changed"), "{text}");
    assert!(
        text.contains("command   mkdir -p out && cp other.txt out/d.txt"),
        "{text}"
    );
    let out = ws.mlp(&["explain", "b", "--json"]);
    let v: serde_json::Value = out.json();
    assert_eq!(v["key"]["params"]["n"], 1);
    assert_eq!(v["changes"].as_array().unwrap().len(), 0);
}

#[test]
fn gc_removes_what_no_kept_run_needs() {
    let ws = chain();
    ws.run(&[]).assert_ok();
    for i in 0..3 {
        ws.write("other.txt", format!("version {i}\n"));
        ws.run(&[]).assert_ok();
    }
    let v = ws.mlp(&["gc", "--keep", "1", "--json"]).success().json();
    assert!(v["objects_removed"].as_u64().unwrap() >= 3, "{v}");
    // What is current still restores.
    std::fs::remove_file(ws.path().join("out/d.txt")).unwrap();
    let r = ws.run(&[]);
    assert_eq!(r.with_status("restored"), names(&["d"]));
    assert_eq!(ws.read("out/d.txt"), "version 2\n");
}

#[test]
fn a_missing_input_fails_the_stage_and_names_it() {
    let ws = Workspace::new(
        r#"
pipeline "m"
stage s {
  in "data/raw.csv"
  out o = "o.txt"
  run "cp data/raw.csv ${out.o}"
}
"#,
    );
    let r = ws.run(&[]);
    assert_eq!(r.code, 1);
    let reason = r.event("s")["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("`data/raw.csv` does not exist"), "{reason}");
}

#[test]
fn an_output_the_command_stopped_writing_is_not_taken_from_the_last_run() {
    let p = r#"
pipeline "m"
stage s {
  in "v.txt"
  out o = "o.txt"
  run "[ $(cat v.txt) = 1 ] && cp v.txt ${out.o} || true"
}
"#;
    let ws = Workspace::new(p);
    ws.write("v.txt", "1");
    ws.run(&[]).assert_ok();
    ws.write("v.txt", "2");
    let r = ws.run(&[]);
    assert_eq!(r.code, 1);
    assert!(
        r.event("s")["reason"]
            .as_str()
            .unwrap()
            .contains("did not write its declared output `o.txt`")
    );
}

#[test]
fn listing_commands_stop_quietly_on_a_closed_pipe() {
    let ws = chain();
    for _ in 0..3 {
        ws.write("other.txt", format!("{:?}\n", Instant::now()));
        ws.run(&[]).assert_ok();
    }
    for args in [
        &["runs"][..],
        &["explain", "d"],
        &["status"],
        &["show", "last"],
    ] {
        let mut child = ws.command(args).spawn();
        drop(child.stdout.take());
        let out = Output::of(child);
        let err = out.stderr();
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn a_dry_run_changes_nothing() {
    let ws = chain();
    ws.run(&[]).assert_ok();
    ws.write("pipeline.mlp", CHAIN.replace("param n = 1", "param n = 2"));
    ws.run(&[]).assert_ok();
    ws.write("pipeline.mlp", CHAIN);
    let before = ws.read("out/b.txt");
    let r = ws.run(&["--dry-run"]);
    r.assert_ok();
    assert_eq!(r.with_status("would_run"), names(&["b", "c"]));
    assert_eq!(ws.read("out/b.txt"), before, "a dry run restored an output");
    let st: serde_json::Value = ws.mlp(&["status", "--json"]).json();
    let b = st
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "b")
        .unwrap();
    assert!(b["reason"].as_str().unwrap().contains("echo n=1"), "{b}");
}

/// Deleting an output that the cache can bring back: `status` and `--dry-run` name only
/// its stage, because what is below it is decided against the bytes the restore brings
/// back (as the run decides it), and the run restores that one stage and nothing else.
#[test]
fn a_restorable_output_stales_only_its_own_stage() {
    let ws = Workspace::new(
        r#"
stage a { in "src/in.txt"  out o = "a.txt"  run "cp src/in.txt a.txt" }
stage b { in a.o  out o = "b.txt"  run "cp a.txt b.txt" }
stage c { in b.o  out o = "c.txt"  run "cp b.txt c.txt" }
"#,
    );
    ws.write("src/in.txt", "hello\n");
    ws.run(&[]).assert_ok();
    ws.remove("a.txt");

    let status = ws.mlp(&["status", "--json"]).success().json();
    let stale: Vec<&str> = status
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] != "fresh")
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stale, ["a"], "{status}");

    let dry = ws.run(&["--dry-run"]);
    assert_eq!(dry.with_status("would_run"), ["a"]);

    let run = ws.run(&[]);
    run.assert_ok();
    assert_eq!(run.with_status("restored"), ["a"]);
    assert!(run.ran().is_empty(), "{:?}", run.statuses());
    assert_eq!(ws.read("c.txt"), "hello\n");
}
